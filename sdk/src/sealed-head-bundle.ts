import type { TopicBytes } from './topic-cache.js';

/**
 * sealed-head.ts as the browser and mobile bundles have it (build-browser.mjs
 * swaps the module): no sealed heads, so every publish writes and checksums
 * its header. What they save, ~100 ns per event, matters to a Node service
 * publishing hundreds of thousands of events a second; what they cost, about
 * 0.45 KB gzip (with proto's header-patch tables), matters to a page.
 */
export function sealedHead(_t: TopicBytes, _payloadLen: number): Uint8Array | undefined {
  return undefined;
}

/**
 * What a subscription counts against the subscription limits (SPEC 10.10,
 * "How subscriptions are counted"): its weight, about what it makes a node
 * hold, in units of one short subscription. Counted per subscription alone,
 * a client made each of its allowed subscriptions cost up to 9 times what
 * the limits were sized for: each token of a pattern is a trie node with a
 * Map of its own on every node of the mesh (~270 B), and a queue name is kept
 * in the interest key and the queue map (~2.5 B per byte). Measured with
 * real GC: ~650 B for a 1-token pattern, ~1.3 KB for 4 tokens, ~8.9 KB for
 * 32, +0.6 KB for a 256-character queue name.
 *
 * Estimated bytes: 256 per token plus 512, 2.5 per byte of the queue name,
 * 0.5 per byte of the pattern; weight: that over WEIGHT_UNIT, rounded up. A
 * pattern of up to 4 tokens with a short queue name (most) weighs 1; 32
 * tokens weigh 6; 32 tokens and a 256-byte queue name, 7. One unit of weight
 * holds at most ~1.5 KB of heap on a node.
 */

import { utf8Length } from '@meshbus/proto';

/** Estimated bytes of one unit of weight (a subscription of up to 4 tokens). */
export const WEIGHT_UNIT = 1536;

/** The weight of a subscription to `pattern` in queue group `queue` (≥ 1). */
export function subscriptionWeight(pattern: string, queue: string | undefined): number {
  let tokens = 1;
  for (let i = pattern.indexOf('.'); i >= 0; i = pattern.indexOf('.', i + 1)) tokens++;
  const bytes = 256 * (tokens + 2) + (utf8Length(pattern) >>> 1) + (queue === undefined ? 0 : (utf8Length(queue) * 5) >>> 1);
  return Math.max(1, Math.ceil(bytes / WEIGHT_UNIT));
}

/**
 * The weight of `sub`: computed at each count (a scan of ≤ maxTopicLength
 * characters per SUB and UNSUB), not kept on it: a property added to a
 * Subscription after it is made gives the objects the router reads a second shape.
 */
export function weightOf(sub: { readonly pattern: string; readonly queue: string | undefined }): number {
  return subscriptionWeight(sub.pattern, sub.queue);
}

/**
 * process.memoryUsage(), or the last reading when it cannot be taken: on
 * Linux it opens /proc/self to read the RSS, and a process out of file
 * descriptors (EMFILE: a connection flood at the descriptor limit) gets an
 * exception instead, which made /metrics and /v1/stats fail exactly when an
 * operator needs them (found by the HTTP port review). Never throws.
 */
let last: NodeJS.MemoryUsage = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };

export function memoryNow(): NodeJS.MemoryUsage {
  try {
    last = process.memoryUsage();
  } catch {
    /* the last reading (zeros before the first) */
  }
  return last;
}

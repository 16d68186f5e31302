/**
 * memoryNow never throws: process.memoryUsage() opens /proc/self on Linux
 * and throws EMFILE in a process out of descriptors (a connection flood at
 * the limit), which failed /metrics and /v1/stats exactly then. Exhausting
 * this test process's descriptors would break the test runner itself, so
 * the failure is simulated by replacing process.memoryUsage for one call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { memoryNow } from '../src/memory-now.js';

const real = process.memoryUsage;
afterEach(() => {
  process.memoryUsage = real;
});

describe('memoryNow', () => {
  it('reads the process memory, and answers the last reading when it cannot be read (EMFILE)', () => {
    const first = memoryNow();
    expect(first.rss).toBeGreaterThan(0);
    process.memoryUsage = Object.assign(
      () => {
        throw Object.assign(new Error('EMFILE: too many open files, uv_resident_set_memory'), { code: 'EMFILE' });
      },
      { rss: () => 0 },
    ) as typeof process.memoryUsage;
    expect(() => memoryNow()).not.toThrow();
    expect(memoryNow()).toEqual(first);
  });
});

import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ReplicaWait } from '../src/durable/replica-wait.js';
import { requireRedisServer, startRedisServer } from '@meshbus/testkit';

describe('ReplicaWait: one WAIT answers every write waiting on the connection', () => {
  it('50 writers confirming at once cost 2 WAITs, not 50; each gets the replica count', async (ctx) => {
    requireRedisServer(ctx);
    const server = await startRedisServer();
    const r = new Redis(server.url);
    try {
      await r.config('RESETSTAT');
      // No replica: WAIT 1 answers 0 after its timeout (100 ms). One at a time, 50 would take 5 s.
      const wait = new ReplicaWait(r, 1, 100, 1000);
      const got = await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          await r.set(`k${i}`, 'v');
          return wait.confirm('', `k${i}`);
        }),
      );
      expect(got).toEqual(Array.from({ length: 50 }, () => 0));
      const calls = Number(/cmdstat_wait:calls=(\d+)/.exec(await r.info('commandstats'))?.[1]);
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(calls).toBeLessThanOrEqual(3);
      // Later callers get a WAIT of their own (it covers their writes).
      expect(await wait.confirm('', 'k0')).toBe(0);
      expect(Number(/cmdstat_wait:calls=(\d+)/.exec(await r.info('commandstats'))?.[1])).toBe(calls + 1);
    } finally {
      r.disconnect();
      await server.stop();
    }
  });
});

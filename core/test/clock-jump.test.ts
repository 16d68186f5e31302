/**
 * The wall clock set back (an NTP step, a clock set by hand) while a client
 * goes silent: the node's liveness sweep keeps a due time per connection in
 * wall-clock ms, so a due time an hour ahead once meant an hour without a
 * check (the SDK's heartbeat had the same hole: sdk/test/client-faults.test.ts).
 */
import { expect, it, vi } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { RawClient, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode } from '../src/index.js';

const cleanup = cleanups();

it('a client that goes silent as the clock goes back an hour is still closed as stale within a few pings (the node waited the hour out)', async () => {
  const realNow = Date.now.bind(Date);
  let offset = 0;
  const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
  cleanup.push(() => clock.mockRestore());
  const n = await startNode({ port: 0, logger: silentLogger, pingInterval: 100, maxPingsOut: 2 });
  cleanup.push(() => n.close());
  // A raw client never answers PING: silent from the start, as a dead socket is.
  const c = await RawClient.connect(n.port);
  cleanup.push(() => c.close());
  offset = -3_600_000;
  const e = await c.waitFor((g) => g.type === FrameType.ERROR, 3000);
  expect(e.error).toBe('MB_ERR_STALE_CONNECTION');
});

import { expect, it } from 'vitest';
import { FrameType, decodeFrames, encodeFrame } from '@meshbus/proto';
import { RawClient, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode } from '../src/index.js';

/**
 * Events routed to a client connection after it began closing: a route
 * computed before it closed (a run of events whose targets were fixed when
 * one of them made this connection a slow consumer) still hands them to it.
 * They are lost, and counted so (SPEC 10.6: received + dropped.slow =
 * published). Before, they were in no counter: a hostile review's WebSocket
 * slow consumer came out one event short in 6 of 25 runs. Driven here through
 * the session's own delivery calls, the ones a run makes.
 */
const cleanup = cleanups();

it('an event (or a run of them) delivered to a connection that is closing counts as dropped, each once (was: counted nowhere)', async () => {
  const n = await startNode({ port: 0, logger: silentLogger });
  cleanup.push(() => n.close());
  const c = await RawClient.connect(n.port);
  cleanup.push(() => c.close());
  c.sub('feed', 1);
  await c.flush();
  const session = [...n.connections()][0]!;
  const bytes = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(16, 1) }));
  const f = decodeFrames(bytes)[0]!;
  session.close();
  const before = n.stats.dropped.slow;
  session.deliver(f, 0);
  session.deliverRange(f, f.end, 1);
  expect(n.stats.dropped.slow - before).toBe(2);
});

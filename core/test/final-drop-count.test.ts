import { expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../src/index.js';

/**
 * A connection closed with frames still queued counts the events it discards
 * in its `dropped` (OutboundQueue.sendFinal), each once: not the events
 * dropped earlier to make room (their entries are emptied in place and were
 * counted then), not the control frames waiting with them (PONGs).
 * Found reviewing the per-event drop accounting of runs (c1ec76c: a link's
 * 'drop' queue holds one entry per event of a run; "each event once"): the
 * close counted every backlog entry from the head on, so a slow connection
 * whose head was a control frame counted the events dropped behind it twice,
 * and every PONG as a lost event (1,241 for 276 events lost here).
 */
const cleanup = cleanups();

it("a slow connection's dropped counts each event it lost once, whatever waits at the head of its queue", async () => {
  const n: MeshNode = await startNode({ port: 0, logger: silentLogger, maxPending: 64 * 1024, writeDeadline: 60_000 });
  cleanup.push(() => n.close());
  const stuck = await RawClient.connect(n.port);
  cleanup.push(() => stuck.close());
  stuck.sub('feed', 1, { slow: 'drop' });
  await stuck.flush();
  const session = [...n.connections()][0]!;
  stuck.pauseReading();
  const pub = await RawClient.connect(n.port);
  cleanup.push(() => pub.close());
  const frame = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(16 * 1024, 1) }));
  const burst = Buffer.concat(Array.from({ length: 20 }, () => frame));
  // Until the wire is backed up (the kernel's socket buffers full): events wait in the queue.
  for (let i = 0; i < 1000 && !session.backedUp; i++) {
    pub.sendBytes(burst);
    await pub.flush();
  }
  expect(session.backedUp).toBe(true);
  // A PONG joins the queue behind the events (firm: never dropped); the events behind it drop the oldest ones.
  stuck.send({ type: FrameType.PING, correlation: 1 });
  await stuck.flush().catch(() => {}); // its PONG never arrives: the reader stopped
  for (let i = 0; i < 10; i++) {
    pub.sendBytes(burst);
    await pub.flush();
  }
  // PONGs until one does not fit, every droppable event dropped to make room first: a slow consumer.
  const pings = Buffer.concat(Array.from({ length: 3000 }, (_, i) => Buffer.from(encodeFrame({ type: FrameType.PING, correlation: i + 2 }))));
  stuck.sendBytes(pings);
  await until(() => n.stats.slowConsumers === 1, 'the stuck connection is a slow consumer', 10_000);
  // The events it lost were each dropped to make room for another frame (counted in dropped.slow as they went);
  // none was left to discard when it closed. The PONGs it did not get are no events.
  expect(n.stats.dropped.slow).toBeGreaterThan(0);
  expect(session.dropped).toBe(n.stats.dropped.slow);
});

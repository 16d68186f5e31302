import { afterEach, expect, it } from 'vitest';
import { Flags, FrameType } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { ownDurableNode } from './own-durable-node.js';

/**
 * A delayed publish that falls due is delivered once, even when what comes
 * after its delivery fails (here: `waitReplicas` 1 and no replica answers,
 * so every write is "stored on the primary, confirmed by 0 of 1"). Before,
 * that failure failed the delayed job after its event had been stored and
 * delivered: BullMQ retried it, and each attempt stored and delivered it
 * again (3 attempts: live subscribers got the event 3 times, history held
 * it 3 times under 3 positions). Own redis-server.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

it('a due delayed publish whose replica confirmation fails after delivery is not published again (was: once per attempt)', async (ctx) => {
  const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: 'do:', topics: [{ pattern: 'r.>', history: { size: 10 } }], waitReplicas: 1, waitTimeoutMs: 50, queues: { attempts: 3, backoffMs: 50 } });
  const sub = await RawClient.connect(n.port);
  cleanups.push(() => sub.close());
  sub.sub('r.>', 1);
  await sub.flush();
  const pub = await RawClient.connect(n.port);
  cleanups.push(() => pub.close());
  // Scheduled (its answer is a NACK: the job's replica confirmation fails too, "may still be kept").
  pub.send({ type: FrameType.PUB, topic: 'r.x', correlation: 1, flags: Flags.ACK_REQUESTED, ext: { delay: 100 }, payload: Buffer.from('once') });
  await pub.waitFor((g) => g.correlation === 1 && (g.type === FrameType.ACK || g.type === FrameType.NACK));
  await until(() => sub.events().length >= 1, 'the delayed event published', 15_000);
  // The job done or given up (its quota room back: no attempt is left to come), then a marker.
  await until(async () => (await r.hget('do:dq', 'n')) === '0', 'the delayed job settled', 15_000);
  pub.send({ type: FrameType.PUB, topic: 'r.marker', correlation: 2, flags: Flags.ACK_REQUESTED, payload: Buffer.from('marker') });
  await until(() => sub.events().some((e) => e.payload.toString() === 'marker'), 'marker', 15_000);
  expect(sub.events().map((e) => e.payload.toString())).toEqual(['once', 'marker']);
}, 60_000);

import { afterEach, expect, it } from 'vitest';
import { Flags, FrameType } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { ownDurableNode } from './own-durable-node.js';

/**
 * A delayed publish that cannot be published when due (here its topic is a
 * new one under a rule already at maxTopics; likewise a full work queue)
 * fails its attempts and is given up: its room in the delayed quota comes
 * back. Before, the given-up job stayed in BullMQ's failed set with its
 * whole event (removeOnFail was not set), for ever: each one freed its quota
 * room and kept its bytes, so a publisher refilled the quota again and again
 * and the shared Redis grew past the `delayedBytes`/`delayedEvents` bound
 * without end (SPEC 15.8). Own redis-server (it fills it on purpose).
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

it('a delayed publish given up leaves nothing in Redis, so the delayed quota bounds what Redis holds (was: kept for ever in the failed set)', async (ctx) => {
  const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: 'dg:', topics: [{ pattern: 'h.>', history: { size: 10 }, maxTopics: 1 }], queues: { attempts: 2, backoffMs: 50 }, quota: { delayedEvents: 3 } });
  const pub = await RawClient.connect(n.port);
  cleanups.push(() => pub.close());
  const acked = (corr: number): Promise<unknown> => pub.waitFor((g) => g.correlation === corr && g.type === FrameType.ACK);
  // The rule's one topic.
  pub.send({ type: FrameType.PUB, topic: 'h.held', correlation: 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from('x') });
  await acked(1);
  let corr = 1;
  const payload = Buffer.alloc(64 * 1024, 7);
  // Three rounds of the quota's worth (3) of delayed publishes on new topics: each is taken, then given up when due.
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3; i++) {
      corr++;
      pub.send({ type: FrameType.PUB, topic: `h.new${corr}`, correlation: corr, flags: Flags.ACK_REQUESTED, ext: { delay: 50 }, payload });
      await acked(corr);
    }
    await until(async () => (await r.hget('dg:dq', 'n')) === '0', `round ${round}: given up, room back`, 15_000);
  }
  // Nothing of the nine is left: not waiting, not delayed, not kept as failed.
  const left = await r.zcard('{dg:bull}:delayed:failed');
  const jobs = (await r.keys('{dg:bull}:delayed:[0-9]*')).length;
  expect({ left, jobs }).toEqual({ left: 0, jobs: 0 });
}, 60_000);

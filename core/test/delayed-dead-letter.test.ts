import { afterEach, expect, it } from 'vitest';
import { Flags, FrameType } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { ownDurableNode } from './own-durable-node.js';

/**
 * A delayed publish the node acknowledged and then gave up after its
 * attempts (it falls due on a new topic of a rule already at maxTopics, so
 * each attempt is refused MB_ERR_STORE_FULL) is kept as a dead letter, as a
 * work queue's job is: readable with deadLetters() (no group: the delayed
 * ones), bounded at queues.maxJobs (the oldest dropped past it), counted in
 * meshbus_store_dead_letters_total{kind="delayed"}. Before, it was removed
 * from Redis and only logged: an acknowledged event lost without a trace.
 * Own redis-server (it fills a rule on purpose).
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

it('a delayed publish given up after its attempts is a dead letter (was: removed, only logged)', async (ctx) => {
  const { n } = await ownDurableNode(ctx, cleanups, { prefix: 'dd:', topics: [{ pattern: 'h.>', history: { size: 10 }, maxTopics: 1 }], queues: { attempts: 2, backoffMs: 20, maxJobs: 3 } });
  const pub = await RawClient.connect(n.port);
  cleanups.push(() => pub.close());
  const acked = (corr: number): Promise<unknown> => pub.waitFor((g) => g.correlation === corr && g.type === FrameType.ACK);
  // The rule's one topic: every delayed publish below falls due on a new one, refused.
  pub.send({ type: FrameType.PUB, topic: 'h.held', correlation: 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from('x') });
  await acked(1);
  for (let corr = 2; corr <= 6; corr++) {
    pub.send({ type: FrameType.PUB, topic: `h.new${corr}`, correlation: corr, flags: Flags.ACK_REQUESTED, ext: { delay: 20, headers: { k: `v${corr}` } }, payload: Buffer.from(`late ${corr}`) });
    await acked(corr); // acknowledged: the node took it
    if (corr === 2) {
      await until(() => n.stats.store.deadLetters.delayed === 1, 'the first one given up', 15_000);
      const [letter] = await n.durability!.deadLetters();
      expect(letter).toMatchObject({ topic: 'h.new2', attempts: 2, error: expect.stringMatching(/MB_ERR_STORE_FULL|maxTopics|topics/) });
    }
  }
  await until(() => n.stats.store.deadLetters.delayed === 5, 'all five given up and dead-lettered', 15_000);
  // Bounded like a group's dead-letter queue: the newest maxJobs (3) kept.
  const letters = await n.durability!.deadLetters();
  expect(letters.map((l) => l.topic).sort()).toEqual(['h.new4', 'h.new5', 'h.new6']);
  // No group's dead-letter queue took them.
  expect(await n.durability!.deadLetters('delayed')).toHaveLength(0);
  expect(n.stats.store.deadLetters.queue).toBe(0);
}, 40_000);

it('a given-up job whose dead letter cannot be written stays in the failed jobs (was: removed with the failure, lost)', async (ctx) => {
  const { n, r } = await ownDurableNode(ctx, cleanups, { prefix: 'dk:', topics: [{ pattern: 'h.>', history: { size: 10 }, maxTopics: 1 }], queues: { attempts: 1, backoffMs: 20 } });
  // The dead-letter queue cannot take a letter: its job id counter is no integer (the add's INCR fails).
  await r.set('{dk:bull}:dlq.delayed:id', 'not a number');
  const pub = await RawClient.connect(n.port);
  cleanups.push(() => pub.close());
  pub.send({ type: FrameType.PUB, topic: 'h.held', correlation: 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from('x') });
  await pub.waitFor((g) => g.correlation === 1 && g.type === FrameType.ACK);
  pub.send({ type: FrameType.PUB, topic: 'h.late', correlation: 2, flags: Flags.ACK_REQUESTED, ext: { delay: 20 }, payload: Buffer.from('kept') });
  await pub.waitFor((g) => g.correlation === 2 && g.type === FrameType.ACK);
  // Given up (one attempt), no letter written: the job is still in Redis, with its event.
  await until(async () => (await r.zcard('{dk:bull}:delayed:failed')) === 1, 'the given-up job kept in the failed jobs', 15_000);
  const [id] = await r.zrange('{dk:bull}:delayed:failed', 0, -1);
  const data = JSON.parse((await r.hget(`{dk:bull}:delayed:${id}`, 'data'))!) as { topic: string };
  expect(data.topic).toBe('h.late');
  expect(n.stats.store.deadLetters.delayed).toBe(0);
}, 30_000);

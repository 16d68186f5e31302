/**
 * The durable queue set on a Redis that accepts connections and never answers
 * (our own redis-server, SIGSTOPped): each wait ends at the store deadline,
 * and the commands left waiting in ioredis's queue are one per kind, not one
 * per call. Before (session 8 leftovers), the node's queue list refresh sent
 * one SMEMBERS every 5 s and per notice, unbounded in time, and each
 * registration retry one more SADD: all queued for as long as Redis was
 * silent, then run at once when it woke.
 */
import { afterEach, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { ownRedisServers, until } from '@meshbus/testkit';
import { QueueSet, queueMember } from '../src/durable/queue-set.js';

const redis = ownRedisServers();
const conns: Redis[] = [];
afterEach(() => {
  for (const c of conns.splice(0)) c.disconnect();
});

/** Calls of `cmd` Redis has run (INFO commandstats). */
async function calls(r: Redis, cmd: string): Promise<number> {
  const info = await r.info('commandstats');
  return Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}

it('a silent Redis: every list() and add() fails at the deadline; one SMEMBERS and one SADD per queue wait, not one per call', async ({ skip }) => {
  const server = await redis.start({ skip });
  const conn = new Redis(server.url, { maxRetriesPerRequest: null });
  const probe = new Redis(server.url);
  conns.push(conn, probe);
  const set = new QueueSet(conn, 'qs:queues', 'qs:queues:changed', 150);
  await set.add(queueMember('jobs.>', 'workers'), 'hello', 'the registration');
  expect(await set.list()).toEqual([queueMember('jobs.>', 'workers')]);
  const before = { smembers: await calls(probe, 'smembers'), sadd: await calls(probe, 'sadd'), publish: await calls(probe, 'publish') };

  server.pause();
  const outcomes: string[] = [];
  const failed = (e: { code?: string; message?: string }): void => void outcomes.push(`${e.code}: ${e.message}`);
  for (let i = 0; i < 10; i++) {
    await Promise.all([
      set.list().then(() => outcomes.push('listed'), failed),
      set.add(queueMember('jobs.>', 'late'), 'late', 'the registration').then(() => outcomes.push('added'), failed),
      set.add(queueMember('jobs.>', 'late'), 'late', 'the registration').then(() => outcomes.push('added'), failed),
    ]);
  }
  expect(outcomes).toHaveLength(30);
  expect(outcomes.filter((o) => o === 'MB_ERR_STORE_UNAVAILABLE: durable store unavailable: redis did not answer the durable queue list within 150 ms')).toHaveLength(10);
  expect(outcomes.filter((o) => o === 'MB_ERR_STORE_UNAVAILABLE: durable store unavailable: redis did not answer the registration within 150 ms')).toHaveLength(20);

  server.resume();
  // What waited in ioredis's queue runs now, one of each: a list() now shares the SMEMBERS sent before the SADD...
  expect(await set.list()).toEqual([queueMember('jobs.>', 'workers')]);
  // ...and the next one reads the set again.
  expect((await set.list()).sort()).toEqual([queueMember('jobs.>', 'late'), queueMember('jobs.>', 'workers')]);
  await until(async () => (await calls(probe, 'publish')) > before.publish, 'the waiting SADD\'s notice published');
  const after = { smembers: await calls(probe, 'smembers'), sadd: await calls(probe, 'sadd'), publish: await calls(probe, 'publish') };
  // The one left waiting, then the fresh read.
  expect(after.smembers - before.smembers).toBe(2);
  expect(after.sadd - before.sadd).toBe(1);
  expect(after.publish - before.publish).toBe(1);
}, 30_000);

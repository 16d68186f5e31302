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
import net from 'node:net';
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
  // What waited in ioredis's queue runs now, one of each; a list() now is answered by an SMEMBERS sent after
  // the one left waiting (which ran before the SADD), one for all the calls that came meanwhile.
  expect((await set.list()).sort()).toEqual([queueMember('jobs.>', 'late'), queueMember('jobs.>', 'workers')]);
  await until(async () => (await calls(probe, 'publish')) > before.publish, 'the waiting SADD\'s notice published');
  const after = { smembers: await calls(probe, 'smembers'), sadd: await calls(probe, 'sadd'), publish: await calls(probe, 'publish') };
  // The one left waiting, then the fresh read.
  expect(after.smembers - before.smembers).toBe(2);
  expect(after.sadd - before.sadd).toBe(1);
  expect(after.publish - before.publish).toBe(1);
}, 30_000);

/** A forwarder to `port` whose answers (Redis to client) can be held back: a slow network path. */
async function holdingProxy(port: number): Promise<{ url: string; hold(): void; release(): void; close(): Promise<void> }> {
  let held: Buffer[] | undefined;
  let client: net.Socket | undefined;
  const open = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const up = net.connect(port, '127.0.0.1');
    client = s;
    open.add(s).add(up);
    s.pipe(up);
    up.on('data', (b: Buffer) => (held ? held.push(b) : s.write(b)));
    for (const x of [s, up]) x.on('error', () => {}).on('close', () => (s.destroy(), up.destroy()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    hold: () => void (held = []),
    release: () => {
      for (const b of held ?? []) client?.write(b);
      held = undefined;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const x of open) x.destroy();
        server.close(() => r());
      }),
  };
}

it('a list() asked after the set changed reads the change: it does not share the answer of an SMEMBERS sent before', async ({ skip }) => {
  const server = await redis.start({ skip });
  const proxy = await holdingProxy(Number(new URL(server.url).port));
  const conn = new Redis(proxy.url, { maxRetriesPerRequest: null });
  const other = new Redis(server.url, { maxRetriesPerRequest: null });
  const probe = new Redis(server.url);
  conns.push(conn, other, probe);
  try {
    const set = new QueueSet(conn, 'qs:queues', 'qs:queues:changed', 10_000);
    const elsewhere = new QueueSet(other, 'qs:queues', 'qs:queues:changed', 10_000);
    await set.add(queueMember('jobs.>', 'workers'), 'hello', 'the registration');
    const before = await calls(probe, 'smembers');
    // This node's refresh: Redis runs its SMEMBERS at once, the answer is slow to come back.
    proxy.hold();
    const first = set.list();
    await until(async () => (await calls(probe, 'smembers')) > before, 'the first SMEMBERS run');
    // Another node registers a queue and tells everyone; this node's refresh on that notice lists again.
    await elsewhere.add(queueMember('jobs.>', 'late'), 'late', 'the registration');
    const afterNotice = set.list();
    proxy.release();
    expect(await first).toEqual([queueMember('jobs.>', 'workers')]);
    expect((await afterNotice).sort()).toEqual([queueMember('jobs.>', 'late'), queueMember('jobs.>', 'workers')]);
  } finally {
    conn.disconnect();
    await proxy.close();
  }
}, 30_000);

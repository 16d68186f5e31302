/**
 * Durable work queues are forgotten once no member has used them for
 * `queues.inactiveMs`, and one host's clients make at most `maxPerHost` of
 * those a node knows. Before (twenty-second session's review), the set
 * `<prefix>queues` only grew: a client allowed durable SUBs registered 1,024
 * names in 14 s by subscribing and unsubscribing, every later event on their
 * pattern became a job in each, and every new queue of the mesh was refused
 * past `maxQueues`, for ever.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FrameType } from '@meshbus/proto';
import { durableSuite, RawClient, type RedisServer, redisServerInstalled, requireRedisServer, startRedisServer, until } from '@meshbus/testkit';
import { startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import { queueMember } from '../src/durable/queue-set.js';
import { queueName } from '../src/durable/queue-names.js';

const BIN = fileURLToPath(new URL('../../bin/meshbus.js', import.meta.url));
const suite = durableSuite({ start: startNode });
const { node, client } = suite;

let server: RedisServer | undefined;
let admin: Redis | undefined;
let prefix = '';
const raws: RawClient[] = [];
beforeAll(async () => {
  if (!redisServerInstalled()) return;
  server = await startRedisServer();
  admin = new Redis(server.url);
});
beforeEach(({ skip }) => {
  requireRedisServer({ skip });
  prefix = `ret${Math.random().toString(36).slice(2, 8)}:`;
  return () => {
    for (const c of raws.splice(0)) c.close();
  };
});
afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

function durable(queues: NonNullable<NodeOptions['durable']>['queues']): NodeOptions['durable'] {
  return { redis: server!.url, prefix, queues };
}
async function raw(n: MeshNode, from?: string): Promise<RawClient> {
  const c = await RawClient.connect(n.port, {}, from);
  raws.push(c);
  return c;
}
/** The node's BullMQ queue objects by name. */
const heldQueues = (n: MeshNode): Map<string, unknown> => (n.durability as unknown as { work: { queues: Map<string, unknown> } }).work.queues;
const listed = async (): Promise<string[]> => (await admin!.smembers(`${prefix}queues`)).sort();
const refusals = (c: RawClient, sid?: number): number => c.got.filter((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS' && (sid === undefined || g.correlation === sid)).length;
/** A durable queue SUB of `c` (sid, group), flushed: how many refusals its sid got. */
async function joinQueue(c: RawClient, pattern: string, sid: number, q: string): Promise<number> {
  c.sub(pattern, sid, { q, durable: true });
  await c.flush();
  return refusals(c, sid);
}

describe('durable queue retention', () => {
  it('a queue with no member for inactiveMs leaves the set and takes no more jobs; its jobs wait for a member that comes back', async () => {
    const n = await node({ durable: durable({ inactiveMs: 1500 }) });
    const pub = await client(n);
    const member = await client(n);
    const first = member.subscribe('ret.>', { queue: 'w', durable: true, callback: () => {} });
    await until(async () => (await listed()).length === 1, 'queue registered');
    first.unsubscribe();
    await member.flush();
    // Kept while its retention lasts: a job per event.
    await pub.publish('ret.a', 'kept', { ack: true });
    expect(await n.durability!.backlog('ret.>', 'w')).toBe(1);
    expect(heldQueues(n).has(queueName('ret.>', 'w'))).toBe(true);

    await until(async () => (await listed()).length === 0, 'queue forgotten after 1.5 s unused', 15_000);
    expect(await admin!.hget(`${prefix}queues:seen`, queueMember('ret.>', 'w'))).toBeNull();
    // Every node stops adding jobs (this one once the grace of two refreshes is over).
    await until(() => (n.durability!.matcher.forTopic('ret.b')?.queues.length ?? 0) === 0, 'node forgot the queue');
    // And closed its job library object (each kept three listeners on the shared Redis connection for good).
    expect(heldQueues(n).has(queueName('ret.>', 'w'))).toBe(false);
    // Without a queue (or rule) the topic is not durable: an acked publish is refused, a plain one only routed.
    await expect(pub.publish('ret.b', 'after', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });
    await pub.publish('ret.b', 'after');
    await pub.flush();
    expect(await n.durability!.backlog('ret.>', 'w')).toBe(1);

    // A member that comes back registers it again and gets what waited.
    const got: string[] = [];
    member.subscribe('ret.>', { queue: 'w', durable: true, callback: (m) => void got.push(Buffer.from(m.data).toString()) });
    await until(() => got.length === 1, 'waiting job delivered');
    expect(got).toEqual(['kept']);
    expect(await listed()).toEqual([queueMember('ret.>', 'w')]);
  }, 40_000);

  it('a queue with a member on another node is kept however long, and the other nodes go on enqueuing for it', async () => {
    const a = await node({ durable: durable({ inactiveMs: 1000 }) });
    const b = await node({ durable: durable({ inactiveMs: 1000 }) });
    const got: string[] = [];
    const member = await client(b);
    member.subscribe('live.>', { queue: 'w', durable: true, callback: (m) => void got.push(Buffer.from(m.data).toString()) });
    await until(async () => (await listed()).length === 1, 'queue registered');
    // Six retention periods, a dozen sweeps by each node.
    await new Promise((r) => setTimeout(r, 6000));
    expect(await listed()).toEqual([queueMember('live.>', 'w')]);
    const pub = await client(a);
    await pub.publish('live.x', 'through a', { ack: true });
    await until(() => got.length === 1, 'job from the other node delivered');
  }, 40_000);

  it('a queue listed without a seen time (made before retention) starts its clock when a node first sees it', async () => {
    const m = queueMember('old.>', 'legacy');
    await admin!.sadd(`${prefix}queues`, m);
    const n = await node({ durable: durable({ inactiveMs: 2000 }) });
    await until(async () => (await admin!.hget(`${prefix}queues:seen`, m)) !== null, 'clock started');
    expect(await listed()).toEqual([m]);
    expect(n.durability!.matcher.forTopic('old.x')?.queues).toHaveLength(1);
    await until(async () => (await listed()).length === 0, 'forgotten 2 s later', 15_000);
    await until(() => (n.durability!.matcher.forTopic('old.x')?.queues.length ?? 0) === 0, 'node forgot it');
  }, 30_000);

  it('inactiveMs 0 keeps every queue; a value below 1 s is refused', async () => {
    await expect(node({ durable: durable({ inactiveMs: 500 }) })).rejects.toThrow(/inactiveMs must be 0 \(never\) or an integer of at least 1000 ms/);
    const n = await node({ durable: durable({ inactiveMs: 0 }) });
    const c = await raw(n);
    c.sub('keep.>', 1, { q: 'g', durable: true });
    await until(async () => (await listed()).length === 1, 'registered');
    c.send({ type: FrameType.UNSUB, correlation: 1 });
    await c.flush();
    await new Promise((r) => setTimeout(r, 6000));
    expect(await listed()).toEqual([queueMember('keep.>', 'g')]);
  }, 30_000);
});

describe('the marks hash is the node\'s own data', () => {
  it('of another type (Redis is shared), it blocks neither registration nor discovery: replaced, counted, and retention goes on', async () => {
    // Before the fix (in review of this change): HSET before SADD failed every durable queue SUB (MB_ERR_STORE_CORRUPT),
    // and the refresh's sweep failing stopped the node learning any queue.
    await admin!.set(`${prefix}queues:seen`, 'not a hash');
    const n = await node({ durable: durable({ inactiveMs: 1500 }) });
    const got: string[] = [];
    const c = await client(n);
    const sub = c.subscribe('mk.>', { queue: 'w', durable: true, callback: (m) => void got.push(Buffer.from(m.data).toString()) });
    await until(async () => (await listed()).length === 1, 'registered');
    await until(async () => (await admin!.type(`${prefix}queues:seen`)) === 'hash', 'marks replaced');
    expect(n.stats.store.corrupt).toBeGreaterThanOrEqual(1);
    const pub = await client(n);
    await pub.publish('mk.a', 'one', { ack: true });
    await until(() => got.length === 1, 'delivered');
    sub.unsubscribe();
    await c.flush();
    await until(async () => (await listed()).length === 0, 'forgotten once unused', 15_000);
  }, 30_000);
});

describe('a host makes at most maxPerHost of the queues a node knows', () => {
  it('one host subscribing and unsubscribing new groups is refused past its share; another host, and existing groups, are not', async () => {
    const n = await node({ durable: durable({ maxPerHost: 4, inactiveMs: 1500 }) });
    const c = await raw(n);
    for (let sid = 1; sid <= 10; sid++) {
      c.sub('churn.>', sid, { q: `g${sid}`, durable: true });
      await c.flush();
      c.send({ type: FrameType.UNSUB, correlation: sid });
    }
    await c.flush();
    expect(refusals(c)).toBe(6);
    expect(refusals(c, 4)).toBe(0);
    expect(refusals(c, 5)).toBe(1);
    await until(async () => (await listed()).length === 4, 'four queues registered');
    // Joining a queue it made is not a new one.
    expect(await joinQueue(c, 'churn.>', 20, 'g1')).toBe(0);
    // Another host has its own share.
    const other = await raw(n, '127.0.0.2');
    expect(await joinQueue(other, 'churn.>', 1, 'elsewhere')).toBe(0);

    // Once its unused queues are forgotten (g1 has a member: kept), the host may make new ones again.
    await until(async () => (await listed()).length === 2, 'unused queues forgotten', 15_000);
    await until(async () => {
      c.sub('churn.>', 30, { q: 'fresh', durable: true });
      await c.flush();
      const ok = refusals(c, 30) === 0;
      if (!ok) c.got.length = 0;
      return ok;
    }, 'a new queue from the host accepted again');
    await until(async () => (await listed()).includes(queueMember('churn.>', 'fresh')), 'registered');
  }, 40_000);
});

// The twenty-fourth session's review of retention (RELIABILITY.md): marks in one clock, reads bounded, no objects left.
describe('retention in the store\'s clock, with bounded reads', () => {
  it('a node whose clock runs 5 s ahead forgets no queue another node\'s member consumes (marks are Redis TIME)', async () => {
    // Before: each node marked and swept with Date.now(); a node 30 s ahead forgot every queue consumed elsewhere at each
    // sweep, the consumer's node put it back with a notice, and every notice made every node refresh (4,800 notices/s).
    const a = await node({ durable: durable({ inactiveMs: 2000 }) });
    const member = await client(a);
    member.subscribe('skew.>', { queue: 'w', durable: true, callback: () => {} });
    await until(async () => (await listed()).length === 1, 'registered');
    const notices = new Redis(server!.url);
    const forgotten: string[] = [];
    await notices.subscribe(`${prefix}queues:changed`);
    notices.on('message', (_ch, msg: string) => void (msg === 'forgotten' && forgotten.push(msg)));
    // A second node in its own process, its clock 5 s ahead (more than inactiveMs), sweeping every 500 ms.
    const ahead = 'data:text/javascript,const n=Date.now;Date.now=()=>n()+5000;';
    const b = spawn(process.execPath, [`--import=${ahead}`, BIN, 'start', '--port', '0', '--http-port', '0', '--ws-port', '0', '--redis', server!.url, '--redis-prefix', prefix, '--durable-queue-inactive', '2000', '--log-level', 'error'], { stdio: 'ignore' });
    try {
      await until(async () => ((await admin!.pubsub('NUMSUB', `${prefix}queues:changed`)) as [string, number])[1] >= 3, 'the skewed node listens', 15_000);
      await new Promise((r) => setTimeout(r, 4000));
      expect(forgotten).toEqual([]);
      expect(await listed()).toEqual([queueMember('skew.>', 'w')]);
    } finally {
      b.kill('SIGKILL');
      notices.disconnect();
    }
  }, 40_000);

  it('planted marks of no queue and members that are no queue are removed in bounded steps, not read whole each refresh', async () => {
    // Before: HGETALL of the marks every refresh (300,000 planted future fields: ~400 MB of node memory, 0.7 s stalls)
    // and future-dated fields of no listed queue kept for ever; junk members were parsed and marked every refresh.
    const seen = `${prefix}queues:seen`;
    const future = String(Date.now() + 365 * 24 * 3600_000);
    for (let i = 0; i < 20_000; i += 5000) {
      await admin!.hset(seen, Object.fromEntries(Array.from({ length: 5000 }, (_, k) => [`planted-${i + k}`, future])));
      await admin!.sadd(`${prefix}queues`, ...Array.from({ length: 5000 }, (_, k) => `junk-${i + k}`));
    }
    const n = await node({ durable: durable({ inactiveMs: 1000 }) });
    const c = await client(n);
    c.subscribe('real.>', { queue: 'w', durable: true, callback: () => {} });
    await until(async () => (await listed()).length === 1, 'junk members removed, the real queue listed', 15_000);
    expect(await listed()).toEqual([queueMember('real.>', 'w')]);
    await until(async () => (await admin!.hlen(seen)) === 1, 'planted marks removed', 20_000);
    expect(await admin!.hget(seen, queueMember('real.>', 'w'))).not.toBeNull();
  }, 40_000);

  it('a forgotten queue\'s group dead-letter queue object is closed with it (unless another queue has the group)', async () => {
    const n = await node({ durable: durable({ inactiveMs: 1000, attempts: 1 }) });
    const c = await client(n);
    for (const g of ['a', 'b', 'c']) {
      const s = c.subscribe(`dl${g}.>`, { queue: g, durable: true, callback: () => { throw new Error('refused'); } });
      await until(async () => (await listed()).includes(queueMember(`dl${g}.>`, g)), 'registered');
      await c.publish(`dl${g}.x`, 'x', { ack: true });
      await until(async () => (await n.durability!.deadLetters(g)).length === 1, 'dead-lettered');
      s.unsubscribe();
    }
    // Another queue of group 'a' stays: the dead-letter queue it shares stays open.
    c.subscribe('other.>', { queue: 'a', durable: true, callback: () => {} });
    await c.flush();
    await until(async () => (await listed()).length === 1, 'the unused queues forgotten', 15_000);
    const dlqs = (): string[] => [...heldQueues(n).keys()].filter((k) => k.startsWith('dlq-')).sort();
    await until(() => dlqs().length === 1, 'dead-letter queue objects closed', 5000);
    expect(dlqs()).toEqual([`dlq-${Buffer.from('a').toString('base64url')}`]);
  }, 40_000);
});

describe('a host\'s share of queues is counted across the mesh', () => {
  it('a host that made maxPerHost queues through one node is refused more through another; another host is not', async () => {
    // Before: each node counted the queues made through it only, so one host spread over N nodes made N shares
    // (with 4 nodes, all of maxQueues at the defaults) and every other host was refused.
    const cfg = { maxPerHost: 2, maxQueues: 4, inactiveMs: 3_600_000 };
    const a = await node({ durable: durable(cfg) });
    const b = await node({ durable: durable(cfg) });
    const viaA = await raw(a, '127.0.0.2');
    viaA.sub('e.>', 1, { q: 'g1', durable: true });
    viaA.sub('e.>', 2, { q: 'g2', durable: true });
    await viaA.flush();
    await until(async () => (await listed()).length === 2, 'two made through a');
    expect(await admin!.hget(`${prefix}queues:owner`, queueMember('e.>', 'g1'))).toBe('127.0.0.2');
    // b learns who made them at its next refresh (each registration's notice starts one).
    await until(() => (b.durability as unknown as { work: { known: { meshPerHost?: Map<string, number> } } }).work.known.meshPerHost?.get('127.0.0.2') === 2, 'b counts them');
    expect(await joinQueue(await raw(b, '127.0.0.2'), 'e.>', 3, 'g3')).toBe(1);
    expect(await joinQueue(await raw(b, '127.0.0.3'), 'good.>', 1, 'mine')).toBe(0);
    await until(async () => (await listed()).length === 3, 'the other host\'s queue made');
  }, 30_000);
});

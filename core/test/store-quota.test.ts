import { afterEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Flags, FrameType, codeFromNumber, decodeError } from '@meshbus/proto';
import { RawClient, requireRedisServer, startRedisServer, until, type RedisServer } from '@meshbus/testkit';
import { silentLogger, startNode, type DurableOptions } from '../src/index.js';
import { startHttp } from '../src/http/index.js';
import { connect } from '@meshbus/sdk';

/**
 * Store quotas (SPEC 15.8). Hostile review of 2026-11-30: a client allowed to
 * publish on a durable rule grew the shared Redis without bound — 300 delayed
 * publishes of 1 MB with a one-day delay added 472 MB in 8 s, and every new
 * topic under a history rule is a new stream that stays. Past a quota a
 * publish is now refused with MB_ERR_STORE_FULL (4030), neither stored nor
 * delivered, and the store stays within the bound. Each test runs its own
 * redis-server (it fills it on purpose).
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function ownRedis(): Promise<{ server: RedisServer; r: Redis }> {
  const server = await startRedisServer();
  cleanups.push(() => server.stop());
  const r = new Redis(server.port, '127.0.0.1', { lazyConnect: false });
  cleanups.push(() => void r.disconnect());
  return { server, r };
}

async function node(url: string, durable: Omit<DurableOptions, 'redis'>) {
  const n = await startNode({ port: 0, logger: silentLogger, durable: { redis: url, ...durable } });
  cleanups.push(() => n.close());
  return n;
}

async function client(port: number): Promise<RawClient> {
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  return c;
}

const answers = (c: RawClient) => c.got.filter((g) => g.type === FrameType.ACK || g.type === FrameType.NACK).sort((x, y) => x.correlation - y.correlation);
/** 'ACK', or the code of a NACK (the raw client decodes only ERROR bodies). */
const outcome = (g: { type: number; payload: Buffer }): string => (g.type === FrameType.ACK ? 'ACK' : codeFromNumber(decodeError(g.payload).code));
const usedMemory = async (r: Redis): Promise<number> => Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]);

describe('distinct topics per rule', () => {
  it('publishes on 200 new topics past maxTopics 50 are refused with 4030, not stored, not delivered; held topics go on; the count is mesh-wide', async (ctx) => {
    requireRedisServer(ctx);
    const { server, r } = await ownRedis();
    const durable = { prefix: 'q:', topics: [{ pattern: 't.>', history: { size: 10 }, maxTopics: 50 }] };
    const a = await node(server.url, durable);
    const b = await node(server.url, durable);
    // Two nodes on one Redis, not linked: each delivers what it accepted, the topic count is shared.
    const subA = await client(a.port);
    const subB = await client(b.port);
    for (const s of [subA, subB]) {
      s.sub('t.>', 1);
      await s.flush();
    }
    const pa = await client(a.port);
    const pb = await client(b.port);
    const payload = new Uint8Array(1024).fill(7);
    // 30 topics through node A, then 170 others through node B: the mesh holds 50 in all.
    for (let i = 0; i < 30; i++) pa.send({ type: FrameType.PUB, topic: `t.a${i}`, correlation: i + 1, flags: Flags.ACK_REQUESTED, payload });
    await until(() => answers(pa).length === 30, 'node A answered', 20_000);
    for (let i = 0; i < 170; i++) pb.send({ type: FrameType.PUB, topic: `t.b${i}`, correlation: i + 1, flags: Flags.ACK_REQUESTED, payload });
    await until(() => answers(pb).length === 170, 'node B answered', 20_000);
    expect(answers(pa).every((g) => g.type === FrameType.ACK)).toBe(true);
    const nb = answers(pb);
    expect(nb.filter((g) => g.type === FrameType.ACK)).toHaveLength(20);
    const nacks = nb.filter((g) => g.type === FrameType.NACK);
    expect(nacks).toHaveLength(150);
    expect(new Set(nacks.map(outcome))).toEqual(new Set(['MB_ERR_STORE_FULL']));
    expect(b.stats.store.full.topics).toBe(150);

    // Unacked: a non-fatal ERROR on the PUB's correlation; the connection stays.
    pb.send({ type: FrameType.PUB, topic: 't.unacked', correlation: 999, payload });
    const err = await pb.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 999);
    expect(err.error).toBe('MB_ERR_STORE_FULL');
    // A topic the rule holds still takes events, through either node.
    pb.send({ type: FrameType.PUB, topic: 't.a0', correlation: 1000, flags: Flags.ACK_REQUESTED, payload });
    expect((await pb.waitFor((g) => g.correlation === 1000 && (g.type === FrameType.ACK || g.type === FrameType.NACK))).type).toBe(FrameType.ACK);
    expect(pb.closed).toBe(false);

    // Refused events were not delivered: 30 topics on A, 20 on B + the second event of t.a0.
    const delivered = () => [...subA.events(), ...subB.events()];
    await until(() => delivered().length >= 51, 'deliveries', 10_000);
    await new Promise((res) => setTimeout(res, 200));
    expect(subA.events()).toHaveLength(30);
    expect(subB.events()).toHaveLength(21);
    expect(new Set(delivered().map((g) => g.topic)).size).toBe(50);
    // Redis holds 50 topics: a stream and a meta hash each, plus the rule's topic set.
    expect(await r.scard('q:tp:t.>')).toBe(50);
    expect((await r.keys('q:h:*')).length).toBe(50);
    expect((await r.keys('q:m:*')).length).toBe(50);
  }, 60_000);
});

describe('topics of a rule whose history ages out', () => {
  it('give their place back once their keys expired: a rule of short-lived topics is not full for good after maxTopics of them', async (ctx) => {
    // Before: the set kept every topic the rule had seen; with topics like orders.<id> and a day of history,
    // every new topic was refused after the 10,000th for good, though nothing of the old ones was left.
    requireRedisServer(ctx);
    const { server, r } = await ownRedis();
    const durable = { prefix: 'x:', topics: [{ pattern: 'o.>', history: { size: 10, maxAgeMs: 1500 }, maxTopics: 5 }, { pattern: 'l.>', history: { size: 10, maxAgeMs: 1500 }, latest: true, maxTopics: 5 }] };
    const a = await node(server.url, durable);
    const b = await node(server.url, durable);
    const pa = await client(a.port);
    const pb = await client(b.port);
    let corr = 0;
    const publish = async (c: RawClient, topic: string): Promise<string> => {
      const id = ++corr;
      c.send({ type: FrameType.PUB, topic, correlation: id, flags: Flags.ACK_REQUESTED, payload: new Uint8Array(8) });
      return outcome(await c.waitFor((g) => g.correlation === id && (g.type === FrameType.ACK || g.type === FrameType.NACK)));
    };
    for (let i = 0; i < 5; i++) expect(await publish(i % 2 ? pa : pb, `o.first${i}`)).toBe('ACK');
    expect(await publish(pa, 'o.sixth')).toBe('MB_ERR_STORE_FULL');
    // Its keys carry the history's TTL; a latest rule's meta (the latest value) does not.
    expect(await r.pttl('x:m:{o.first0}')).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) expect(await publish(pa, `l.t${i}`)).toBe('ACK');
    expect(await r.pttl('x:m:{l.t0}')).toBe(-1);

    // o.first0 stays in use (written through node B every 400 ms); the others expire.
    const start = Date.now();
    while (Date.now() - start < 2200) {
      expect(await publish(pb, 'o.first0')).toBe('ACK');
      await new Promise((res) => setTimeout(res, 400));
    }
    expect(await r.exists('x:m:{o.first1}')).toBe(0);
    // Four new topics take the places of the four expired ones, through either node; the fifth finds the rule full.
    for (let i = 0; i < 4; i++) expect(await publish(i % 2 ? pa : pb, `o.next${i}`)).toBe('ACK');
    expect(await publish(pa, 'o.next4')).toBe('MB_ERR_STORE_FULL');
    expect((await r.smembers('x:tp:o.>')).sort()).toEqual(['o.first0', 'o.next0', 'o.next1', 'o.next2', 'o.next3']);
    // The latest rule keeps its topics (their latest values stay): still full.
    expect(await publish(pa, 'l.new')).toBe('MB_ERR_STORE_FULL');
    // An expired topic written again through a node that admitted it before is admitted again, counted.
    await new Promise((res) => setTimeout(res, 1700));
    expect(await publish(pa, 'o.first1')).toBe('ACK');
    expect(await r.sismember('x:tp:o.>', 'o.first1')).toBe(1);
    expect(await r.scard('x:tp:o.>')).toBeLessThanOrEqual(5);
  }, 30_000);
});

describe('delayed publishes', () => {
  it('40 delayed publishes of 1 MB (one-day delay) past delayedBytes 8 MiB: 8 stored, 32 refused with 4030, Redis grows by at most ~the bound', async (ctx) => {
    requireRedisServer(ctx);
    const { server, r } = await ownRedis();
    const n = await node(server.url, { prefix: 'dq:', topics: [{ pattern: 'later.>' }], quota: { delayedBytes: 8 * 1024 * 1024 } });
    const before = await usedMemory(r);
    const pub = await client(n.port);
    const payload = new Uint8Array(1_000_000).fill(1);
    for (let i = 0; i < 40; i++) pub.send({ type: FrameType.PUB, topic: 'later.x', correlation: i + 1, flags: Flags.ACK_REQUESTED, ext: { delay: 86_400_000 }, payload });
    await until(() => answers(pub).length === 40, 'all answered', 30_000);
    const got = answers(pub);
    expect(got.filter((g) => g.type === FrameType.ACK)).toHaveLength(8);
    expect(got.filter((g) => g.type === FrameType.NACK).map(outcome)).toEqual(Array(32).fill('MB_ERR_STORE_FULL'));
    expect(n.stats.store.full.delayed).toBe(32);
    // 8 jobs, base64 (4/3) in BullMQ: ~11 MB; without the quota 40 jobs were ~55 MB.
    const grown = (await usedMemory(r)) - before;
    expect(grown).toBeLessThan(16 * 1024 * 1024);
    expect(await r.hget('dq:dq', 'n')).toBe('8');
  }, 60_000);

  it('the event count bound too; a delayed publish that is due frees its room (normal use unchanged)', async (ctx) => {
    requireRedisServer(ctx);
    const { server, r } = await ownRedis();
    const n = await node(server.url, { prefix: 'dn:', topics: [{ pattern: 'soon.>' }], quota: { delayedEvents: 3 } });
    const sub = await client(n.port);
    sub.sub('soon.>', 1);
    await sub.flush();
    const pub = await client(n.port);
    for (let i = 0; i < 3; i++) pub.send({ type: FrameType.PUB, topic: 'soon.x', correlation: i + 1, flags: Flags.ACK_REQUESTED, ext: { delay: 300 }, payload: Buffer.from(`e${i}`) });
    pub.send({ type: FrameType.PUB, topic: 'soon.x', correlation: 4, flags: Flags.ACK_REQUESTED, ext: { delay: 300 }, payload: Buffer.from('e3') });
    await until(() => answers(pub).length === 4, 'answered', 10_000);
    expect(answers(pub).map((g) => [g.correlation, outcome(g)])).toEqual([
      [1, 'ACK'],
      [2, 'ACK'],
      [3, 'ACK'],
      [4, 'MB_ERR_STORE_FULL'],
    ]);
    // The three are published when due (the refused one never), and give their room back.
    await until(() => sub.events().length === 3, 'delayed events published', 15_000);
    await until(async () => (await r.hget('dn:dq', 'n')) === '0', 'room given back', 10_000);
    pub.send({ type: FrameType.PUB, topic: 'soon.x', correlation: 5, flags: Flags.ACK_REQUESTED, ext: { delay: 50 }, payload: Buffer.from('e4') });
    expect((await pub.waitFor((g) => g.correlation === 5 && (g.type === FrameType.ACK || g.type === FrameType.NACK))).type).toBe(FrameType.ACK);
    await until(() => sub.events().length === 4, 'the next one published', 15_000);
    expect(sub.events().map((g) => g.payload.toString())).toEqual(['e0', 'e1', 'e2', 'e4']);
  }, 60_000);
});

describe('per-event bound', () => {
  it('a durable payload past maxEventBytes is refused with 4030 and not delivered; one at the bound is stored', async (ctx) => {
    requireRedisServer(ctx);
    const { server } = await ownRedis();
    const n = await node(server.url, { prefix: 'ev:', topics: [{ pattern: 'h.>', history: { size: 10 } }], quota: { maxEventBytes: 1000 } });
    const sub = await client(n.port);
    sub.sub('h.>', 1);
    await sub.flush();
    const pub = await client(n.port);
    pub.send({ type: FrameType.PUB, topic: 'h.x', correlation: 1, flags: Flags.ACK_REQUESTED, payload: new Uint8Array(1001) });
    pub.send({ type: FrameType.PUB, topic: 'h.x', correlation: 2, flags: Flags.ACK_REQUESTED, payload: new Uint8Array(1000) });
    pub.send({ type: FrameType.PUB, topic: 'h.x', correlation: 3, flags: Flags.ACK_REQUESTED, ext: { delay: 10 }, payload: new Uint8Array(5000) });
    await until(() => answers(pub).length === 3, 'answered', 10_000);
    expect(answers(pub).map((g) => [g.correlation, outcome(g)])).toEqual([
      [1, 'MB_ERR_STORE_FULL'],
      [2, 'ACK'],
      [3, 'MB_ERR_STORE_FULL'],
    ]);
    await until(() => sub.events().length === 1, 'the stored one delivered', 5000);
    await new Promise((res) => setTimeout(res, 200));
    expect(sub.events().map((g) => g.payload.length)).toEqual([1000]);
    expect(n.stats.store.full.eventSize).toBe(2);
    // Shown where the other store counters are: /metrics and /v1/stats durability.
    const http = await startHttp(n, { port: 0, host: '127.0.0.1' });
    cleanups.push(() => http.close());
    const text = await (await fetch(`${http.url}/metrics`)).text();
    expect(text).toMatch(/^meshbus_store_full_total\{quota="event_size"\} 2$/m);
    expect(text).toMatch(/^meshbus_store_full_total\{quota="topics"\} 0$/m);
    const stats = (await (await fetch(`${http.url}/v1/stats`)).json()) as { durability: { refusedFull: number } };
    expect(stats.durability.refusedFull).toBe(2);
  }, 30_000);
});

describe('jobs waiting per work queue', () => {
  it('a queue whose consumers are offline holds at most maxJobs: later publishes are refused with 4030 before anything is written; room comes back as consumers take jobs', async (ctx) => {
    requireRedisServer(ctx);
    const { server } = await ownRedis();
    const n = await node(server.url, { prefix: 'jq:', queues: { maxJobs: 5, backoffMs: 10 } });
    // A consumer registers the queue, then goes offline: jobs wait in Redis for the next one.
    const first = await connect(`127.0.0.1:${n.port}`);
    first.subscribe('work.>', { queue: 'w', durable: true, callback: () => {} });
    await first.flush();
    await until(() => (n.durability!.matcher.forTopic('work.a')?.queues.length ?? 0) > 0, 'queue registered');
    await first.close();
    // A plain subscriber: a refused event is not delivered live either.
    const live = await client(n.port);
    live.sub('work.>', 1);
    await live.flush();
    const pub = await client(n.port);
    // Before: every one of them was a job in Redis, however many (a queue with no consumer grew without bound).
    // One at a time: concurrent publishes may be refused a few early (JobQuota: a job added while the count is read counts twice).
    for (let i = 0; i < 8; i++) {
      pub.send({ type: FrameType.PUB, topic: 'work.a', correlation: i + 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from(`j${i}`) });
      await until(() => answers(pub).length === i + 1, 'answered', 20_000);
    }
    expect(answers(pub).map(outcome)).toEqual(['ACK', 'ACK', 'ACK', 'ACK', 'ACK', 'MB_ERR_STORE_FULL', 'MB_ERR_STORE_FULL', 'MB_ERR_STORE_FULL']);
    expect(n.stats.store.full.jobs).toBe(3);
    expect(await n.durability!.backlog('work.>', 'w')).toBe(5);
    await until(() => live.events().length === 5, 'accepted ones delivered live');
    await new Promise((res) => setTimeout(res, 200));
    expect(live.events().map((g) => g.payload.toString())).toEqual(['j0', 'j1', 'j2', 'j3', 'j4']);

    // A consumer comes back and takes the five; the queue has room again.
    const got: string[] = [];
    const later = await connect(`127.0.0.1:${n.port}`);
    cleanups.push(() => later.close());
    later.subscribe('work.>', { queue: 'w', durable: true, callback: (m) => void got.push(m.string()) });
    await until(() => got.length === 5, 'the backlog consumed', 30_000);
    await until(async () => (await n.durability!.backlog('work.>', 'w')) === 0, 'no job left');
    pub.send({ type: FrameType.PUB, topic: 'work.a', correlation: 100, flags: Flags.ACK_REQUESTED, payload: Buffer.from('j100') });
    expect(outcome(await pub.waitFor((g) => g.correlation === 100 && (g.type === FrameType.ACK || g.type === FrameType.NACK)))).toBe('ACK');
    await until(() => got.length === 6, 'the new job delivered');
    expect([...got].sort()).toEqual(['j0', 'j1', 'j100', 'j2', 'j3', 'j4']);
  }, 60_000);

  it('a burst of concurrent publishes never takes a queue past maxJobs', async (ctx) => {
    requireRedisServer(ctx);
    const { server } = await ownRedis();
    const n = await node(server.url, { prefix: 'jb:', queues: { maxJobs: 20 } });
    const first = await connect(`127.0.0.1:${n.port}`);
    first.subscribe('burst.>', { queue: 'b', durable: true, callback: () => {} });
    await first.flush();
    await until(() => (n.durability!.matcher.forTopic('burst.a')?.queues.length ?? 0) > 0, 'queue registered');
    await first.close();
    const pub = await client(n.port);
    for (let i = 0; i < 60; i++) pub.send({ type: FrameType.PUB, topic: 'burst.a', correlation: i + 1, flags: Flags.ACK_REQUESTED, payload: Buffer.from(`b${i}`) });
    await until(() => answers(pub).length === 60, 'answered', 20_000);
    const acked = answers(pub).filter((g) => g.type === FrameType.ACK).length;
    expect(acked).toBeLessThanOrEqual(20);
    expect(acked).toBeGreaterThan(10);
    expect(answers(pub).filter((g) => g.type === FrameType.NACK).map(outcome)).toEqual(Array(60 - acked).fill('MB_ERR_STORE_FULL'));
    expect(await n.durability!.backlog('burst.>', 'b')).toBe(acked);
  }, 60_000);
});

/**
 * Left-overs of the durable store's last reviews (2026-12-02), one test per
 * fault; each failed on the code before its fix.
 */
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { Msg } from '@meshbus/sdk';
import { RawClient, durableSuite, logCapture, nodeKit, ownRedisServers, sleep, until, url } from '@meshbus/testkit';
import { connect } from '@meshbus/sdk';
import { startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import { startHttp } from '../src/http/index.js';
import { bullPrefix, queueName } from '../src/durable/queue-names.js';

const suite = durableSuite({ start: startNode });
const text = (m: Msg): string => Buffer.from(m.data).toString();

describe('durable left-overs', () => {
  it("a delivery cut by its node's stop costs no attempt, however the node stops and whenever the queues look at closed consumers", async () => {
    const prefix = suite.prefix();
    const durable: NodeOptions['durable'] = { redis: suite.redis().url, prefix, queues: { attempts: 1, ackTimeoutMs: 60_000 } };
    const b = await suite.node({ durable });
    const pub = await suite.client(b);
    /** A node whose consumer (queue group `v`) holds job `v` unacked when `stop` stops it. */
    const held = async (v: string, stop: (a: MeshNode) => Promise<void>): Promise<void> => {
      const a = await suite.node({ durable, drainTimeout: 3000 });
      const slow = await suite.client(a, { reconnect: false });
      const seen: string[] = [];
      slow.subscribe(`cl.${v}`, { queue: v, durable: true, callback: (m) => new Promise<void>(() => void seen.push(text(m))) });
      await slow.flush();
      // Node b learns the queue from the set's notice: until then an acked publish on it is refused.
      await until(() => pub.publish(`cl.${v}`, v, { ack: true }).then(() => true, () => false), 'the queue known on node b');
      await until(() => seen.length === 1, `job ${v} in delivery on its node`);
      await stop(a);
    };
    await held('closed', (a) => a.close());
    await held('drained', async (a) => {
      // Keeps the drain going to its deadline: it ignores the GOODBYE and keeps its side open.
      const stays = await RawClient.connect(a.port);
      stays.socket.allowHalfOpen = true;
      try {
        const stopping = a.shutdown();
        // The consumer left at its GOODBYE; a queue-set notice (a queue registered anywhere) makes the
        // node look for deliveries whose consumer is gone, as its 5 s refresh does.
        await sleep(300);
        const other = await suite.client(b);
        other.subscribe('cl.other', { queue: 'x', durable: true, callback: () => {} });
        await other.flush();
        await stopping;
      } finally {
        stays.close();
      }
    });
    const got: string[] = [];
    const next = await suite.client(b);
    for (const v of ['closed', 'drained']) next.subscribe(`cl.${v}`, { queue: v, durable: true, callback: (m) => void got.push(text(m)) });
    // Was: the drained one failed "consumer disconnected", its one attempt used: dead-lettered, never delivered again.
    await until(() => got.length === 2, `both jobs delivered on node b (got ${got.join(',')})`, 8000).catch(() => {});
    expect([...(await b.durability!.deadLetters('closed')), ...(await b.durability!.deadLetters('drained'))]).toEqual([]);
    expect(got.sort()).toEqual(['closed', 'drained']);
  }, 30_000);

  it('bytes a replay reserves for its connection count in the outbound budget, are bounded by it, leave it with the connection, and /v1/node lists the budget', async () => {
    const budget = 256 * 1024;
    const n = await suite.node({ maxPending: 128 * 1024, outboundBudget: budget });
    const http = await startHttp(n, { port: 0, host: '127.0.0.1' });
    try {
      const clients = await Promise.all([0, 1, 2, 3].map(() => suite.client(n)));
      await until(() => n.connectionCount === 4, 'four sessions');
      const view = async (): Promise<{ outboundHeldBytes?: number; limits: { outboundBudget?: number } }> => (await fetch(`${http.url}/v1/node`)).json();
      // What a resuming subscription does with each live event while its replay reads history
      // (recovery.ts keep): reserve its bytes, stop when they do not fit.
      const reserved = new Map<{ reserve(b: number): boolean; unreserve(b: number): void }, number>();
      for (const s of n.connections()) {
        let got = 0;
        while (got < 120 * 1024 && s.reserve(4096)) got += 4096;
        reserved.set(s, got);
      }
      const total = [...reserved.values()].reduce((a, b) => a + b, 0);
      // Was: each connection reserved up to its maxPending (480 KiB in all), none of it in the budget the node reports.
      expect(total).toBeLessThanOrEqual(budget / 2);
      expect(total).toBeGreaterThan(0);
      const v = await view();
      expect(v.limits.outboundBudget).toBe(budget);
      expect(v.outboundHeldBytes).toBe(total);
      // Connections that die give their reservations back, whatever their holders do later.
      for (const c of clients) await c.close();
      await until(() => n.connectionCount === 0, 'sessions closed');
      expect((await view()).outboundHeldBytes).toBe(0);
      for (const [s, bytes] of reserved) s.unreserve(bytes);
      expect((await view()).outboundHeldBytes).toBe(0);
    } finally {
      await http.close();
    }
  }, 20_000);

  it("an unreadable delayed publish dropped when due gives its bytes back to the delayed quota at once, not when the count is next reset", async () => {
    const prefix = suite.prefix();
    const n = await suite.node({ durable: { redis: suite.redis().url, prefix, topics: [{ pattern: 'ud.>', history: { size: 10 } }], queues: { attempts: 2, backoffMs: 50 } } });
    const admin = new Redis(suite.redis().url);
    try {
      const pub = await suite.client(n);
      const counter = async (): Promise<{ n: number; b: number }> => {
        const h = await admin.hgetall(`${prefix}dq`);
        return { n: Number(h['n'] ?? 0), b: Number(h['b'] ?? 0) };
      };
      // One that stays waiting (the count never falls to 0, where it is reset), then the one made unreadable.
      await pub.publish('ud.later', 'x'.repeat(100), { delay: 120_000, ack: true });
      const waiting = await counter();
      expect(waiting.n).toBe(1);
      await pub.publish('ud.poison', 'y'.repeat(5000), { delay: 700, ack: true });
      const key = `${bullPrefix(prefix)}:delayed`;
      const ids = await admin.zrange(`${key}:delayed`, 0, -1);
      let target = '';
      for (const id of ids) if ((await admin.hget(`${key}:${id}`, 'data'))?.includes('ud.poison')) target = id;
      expect(target, `the poison job among ${ids.join(',')}`).not.toBe('');
      await admin.hset(`${key}:${target}`, 'data', '{not json');
      await until(() => n.stats.store.corrupt === 1, 'the unreadable delayed publish dropped', 10_000);
      await until(async () => (await counter()).n === 1, 'its event given back');
      // Was: n back to 1, but b still held its 5,000-odd bytes (data.b unreadable: released as 0) until n next fell to 0.
      expect(await counter()).toEqual(waiting);
    } finally {
      admin.disconnect();
    }
  }, 20_000);

  it('a key of the wrong type the node does not replace (the queue set, BullMQ\'s keys) is answered MB_ERR_STORE_CORRUPT naming the key for an operator to remove, not MB_ERR_STORE_UNAVAILABLE', async () => {
    const prefix = suite.prefix();
    const log = logCapture('warn');
    const n = await suite.node({ logger: log.logger, durable: { redis: suite.redis().url, prefix, queues: { ackTimeoutMs: 60_000 } } });
    const admin = new Redis(suite.redis().url);
    try {
      const c = await suite.client(n);
      const errors: Array<{ code: string; message: string }> = [];
      c.on('status', (s) => {
        if (s.type === 'error') errors.push({ code: s.error.code, message: s.error.message });
      });
      // The queue set is a string: the durable queue SUB cannot be registered.
      await admin.set(`${prefix}queues`, 'not a set');
      const got: string[] = [];
      const sub = c.subscribe('kc.>', { queue: 'k', durable: true, callback: (m) => void got.push(text(m)) });
      await until(() => errors.length > 0, 'the registration refused');
      // Was: MB_ERR_STORE_UNAVAILABLE "store data corrupt: a redis key holds the wrong type (WRONGTYPE ...)", no key named.
      expect(errors[0]).toMatchObject({ code: 'MB_ERR_STORE_CORRUPT' });
      // Said what it is, for an operator to remove; the key's name (with the node's prefix) only in the log.
      expect(errors[0]!.message).toContain('a redis key of durable queues (every queue of the mesh) holds a string, not a set');
      expect(errors[0]!.message).toMatch(/an operator must remove it \(the node's log names the key\)/);
      expect(errors[0]!.message).not.toContain(prefix);
      expect(log.records().find((r) => r['key'] === `${prefix}queues`)).toBeDefined();
      // Removed: the node registers the queue on its retry, the consumer gets its jobs.
      await admin.del(`${prefix}queues`);
      await until(async () => (await admin.smembers(`${prefix}queues`)).length === 1, 'the queue registered once the key is gone', 10_000);
      sub.unsubscribe();
      await c.flush();
      // One of BullMQ's keys of that queue is a string: a publish onto the queue cannot add its job.
      const meta = `${bullPrefix(prefix)}:${queueName('kc.>', 'k')}:meta`;
      await admin.del(meta);
      await admin.set(meta, 'not a hash');
      const nack = await c.publish('kc.a', 'x', { ack: true }).then(
        () => undefined,
        (e: { code?: string; message?: string }) => e,
      );
      expect(nack).toMatchObject({ code: 'MB_ERR_STORE_CORRUPT' });
      // The publisher is not told the key (it carries the queue's pattern and group, maybe another client's); the log names it.
      expect(nack!.message).toContain("a redis key of a durable queue's own data (BullMQ's) holds a string, not a hash");
      expect(nack!.message).toMatch(/an operator must remove it \(the node's log names the key\)/);
      expect(nack!.message).not.toContain(meta);
      expect(log.records().find((r) => r['msg'] === 'durable publish failed')).toMatchObject({ key: meta });
    } finally {
      admin.disconnect();
    }
  }, 30_000);
});

const fx = nodeKit();
const ownRedis = ownRedisServers();

/** TYPE commands Redis has run (its own server: nothing else counts there). */
async function typeCalls(rc: Redis): Promise<number> {
  const m = /cmdstat_type:calls=(\d+)/.exec(await rc.info('commandstats'));
  return m ? Number(m[1]) : 0;
}

describe('finding which key is of the wrong type', () => {
  it('a burst of publishes refused for one wrong-type key probes the keys once, not once per publish (26,000 TYPE commands for 200)', async (ctx) => {
    const r = await ownRedis.start(ctx);
    const rc = new Redis(r.port, '127.0.0.1');
    fx.defer(() => void rc.disconnect());
    const prefix = 'kc-burst:';
    const n = await fx.node({ durable: { redis: r.url, prefix, queues: {} } });
    const consumer = fx.track(await connect(url(n)));
    for (let g = 0; g < 16; g++) consumer.subscribe('q.t', { queue: `g${g}`, durable: true, callback: () => {} });
    await consumer.flush();
    const pub = fx.track(await connect(url(n)));
    await pub.publish('q.t', 'warm', { ack: true });
    const bad = `${bullPrefix(prefix)}:${queueName('q.t', 'g15')}:wait`;
    await rc.del(bad);
    await rc.set(bad, 'not a list');
    const before = await typeCalls(rc);
    const codes: string[] = [];
    for (let i = 0; i < 200; i++) await pub.publish('q.t', `x${i}`, { ack: true }).catch((e: { code: string }) => void codes.push(e.code));
    const probes = (await typeCalls(rc)) - before;
    expect(codes).toHaveLength(200);
    expect(new Set(codes)).toEqual(new Set(['MB_ERR_STORE_CORRUPT']));
    // 16 queues × 14 BullMQ keys = 224 per probe; one probe per 5 s for the same keys (the burst may straddle two).
    expect(probes).toBeLessThanOrEqual(3 * 224);
  }, 30_000);
});

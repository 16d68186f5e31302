import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { Msg } from '@meshbus/sdk';
import { durableSuite, type RedisServer, redisServerInstalled, requireRedisServer, startRedisServer, until } from '@meshbus/testkit';
import { startNode, type NodeOptions } from '../src/index.js';

/**
 * A durable queue consumer that leaves at an awkward moment must not leave
 * the queue stuck for the consumer that comes next (users saw a queue idle
 * for a minute after a consumer restart). The moment is made deterministic
 * with CLIENT PAUSE WRITE on a redis-server of the test's own: the node's
 * writes wait while the consumer leaves.
 */
const suite = durableSuite({ start: startNode });
const { node, client } = suite;
const text = (m: Msg): string => Buffer.from(m.data).toString();

describe('durable queue: a consumer leaving at any moment', () => {
  // One server for the file, stopped after every test's nodes (the suite closes them after each test).
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  let prefix = '';
  beforeAll(async () => {
    if (!redisServerInstalled()) return;
    server = await startRedisServer();
    admin = new Redis(server.url, { lazyConnect: true });
    await admin.connect();
  });
  beforeEach(({ skip }) => {
    requireRedisServer({ skip });
    prefix = `leave${Math.random().toString(36).slice(2, 8)}:`;
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  /** Holds every Redis write (the node's and BullMQ's) for `ms`. */
  const pauseWrites = async (ms: number): Promise<void> => void (await admin!.call('CLIENT', 'PAUSE', String(ms), 'WRITE'));
  function durable(queues: NonNullable<NodeOptions['durable']>['queues']): NodeOptions['durable'] {
    // An ACK deadline far beyond the test's waits: a job handed to a consumer that is gone cannot come back in time.
    return { redis: server!.url, prefix, queues: { ackTimeoutMs: 120_000, ...queues } };
  }

  it('a consumer that leaves while its queue registration is in Redis is not kept as a member', async () => {
    // Before: the member was added after it had left. Jobs went to a closed session and waited for their
    // ACK deadline (30 s by default), the new consumer got none of them (the worker's one slot was held).
    const n = await node({ durable: durable({}) });
    const first = await client(n);
    await pauseWrites(500);
    first.subscribe('keep.>', { queue: 'k', durable: true, callback: () => {} });
    await first.flush();
    await first.close();
    const pub = await client(n);
    for (let i = 0; i < 5; i++) await pub.publish('keep.a', `k${i}`, { ack: true });
    const later = await client(n);
    const got: string[] = [];
    later.subscribe('keep.>', { queue: 'k', durable: true, callback: (m) => void got.push(text(m)) });
    await until(() => got.length === 5, `backlog delivered (got ${got.length})`);
    expect(got.sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  }, 40_000);

  it('the job BullMQ hands over with an ACK, when the consumer has left meanwhile, is kept for the next consumer (not a failed attempt)', async () => {
    // Before: that job was failed with "no free consumer on this node" although it was never delivered;
    // with attempts: 1 it went to the dead-letter queue at once, and the next consumer never saw it.
    const n = await node({ durable: durable({ attempts: 1 }) });
    const pub = await client(n);
    const setup = await client(n);
    setup.subscribe('hand.>', { queue: 'h', durable: true, callback: () => {} });
    await until(async () => (await admin!.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    await setup.flush();
    await setup.close();
    for (let i = 0; i < 2; i++) await pub.publish('hand.a', `h${i}`, { ack: true });
    const first = await client(n);
    const firstGot: string[] = [];
    first.subscribe('hand.>', {
      queue: 'h',
      durable: true,
      // The ACK of h0 reaches Redis (with the fetch of h1) only after this consumer is gone.
      callback: async (m) => {
        firstGot.push(text(m));
        await pauseWrites(400);
        setImmediate(() => void first.close());
      },
    });
    await until(() => firstGot.length === 1, 'first job');
    await until(() => first.isClosed, 'first consumer gone');
    const later = await client(n);
    const got: string[] = [];
    later.subscribe('hand.>', { queue: 'h', durable: true, callback: (m) => void got.push(text(m)) });
    await until(() => got.length === 1, 'second job delivered to the next consumer');
    expect(firstGot).toEqual(['h0']);
    expect(got).toEqual(['h1']);
    expect(await n.durability!.deadLetters('h')).toHaveLength(0);
    await until(async () => (await n.durability!.backlog('hand.>', 'h')) === 0, 'backlog empty');
  }, 40_000);

  it('a node that stops with a job in delivery gives it back at once: a consumer on another node gets it', async () => {
    // The job must not stay active in Redis until its lock expires and a stalled check runs (30 to 60 s).
    const cfg = durable({});
    const a = await node({ durable: cfg });
    const b = await node({ durable: cfg });
    const slow = await client(a);
    const seen: string[] = [];
    slow.subscribe('stop.>', { queue: 's', durable: true, callback: (m) => new Promise<void>(() => void seen.push(text(m))) });
    await until(async () => (await admin!.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    await slow.flush();
    const pub = await client(b);
    await pub.publish('stop.a', 'held', { ack: true });
    await until(() => seen.length === 1, 'job in delivery on node a');
    await a.close();
    const other = await client(b);
    const got: string[] = [];
    other.subscribe('stop.>', { queue: 's', durable: true, callback: (m) => void got.push(text(m)) });
    await until(() => got.length === 1, 'job delivered on node b');
    expect(got).toEqual(['held']);
  }, 40_000);

  it('a job fetched while its node stops (handed over with an ACK) is given back at once, not left active', async () => {
    const cfg = durable({});
    const a = await node({ durable: cfg });
    const b = await node({ durable: cfg });
    const setup = await client(b);
    setup.subscribe('stopq.>', { queue: 'sq', durable: true, callback: () => {} });
    await until(async () => (await admin!.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    await setup.flush();
    await setup.close();
    const pub = await client(b);
    for (let i = 0; i < 2; i++) await pub.publish('stopq.a', `s${i}`, { ack: true });
    const first = await client(a);
    const firstGot: string[] = [];
    let stopped: Promise<void> | undefined;
    first.subscribe('stopq.>', {
      queue: 'sq',
      durable: true,
      // The ACK of s0 reaches Redis (with the fetch of s1) only once node a is stopping.
      callback: async (m) => {
        firstGot.push(text(m));
        await pauseWrites(400);
        setImmediate(() => (stopped = a.close()));
      },
    });
    await until(() => stopped !== undefined, 'node a stopping');
    await stopped;
    const other = await client(b);
    const got: string[] = [];
    other.subscribe('stopq.>', { queue: 'sq', durable: true, callback: (m) => void got.push(text(m)) });
    // s0: its ACK may not have reached the node before it stopped, so it may come again (at least once).
    await until(() => got.includes('s1'), 'second job delivered on node b');
    expect(firstGot).toEqual(['s0']);
    await until(async () => (await b.durability!.backlog('stopq.>', 'sq')) === 0, 'backlog empty');
  }, 40_000);

  it('a consumer subscribed with max 1 ACKs its job: completed, neither retried nor dead-lettered', async () => {
    // Before: reaching max ended the subscription as the job was delivered, and that failed the delivery
    // ("consumer disconnected"): with attempts: 1 the handled and ACKed job was dead-lettered.
    const n = await node({ durable: durable({ attempts: 1 }) });
    const c = await client(n);
    const got: string[] = [];
    c.subscribe('one.>', { queue: 'o', durable: true, max: 1, callback: (m) => void got.push(text(m)) });
    await until(async () => (await admin!.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    await c.flush();
    const pub = await client(n);
    await pub.publish('one.a', 'only', { ack: true });
    await until(() => got.length === 1, 'job delivered');
    await until(async () => (await n.durability!.backlog('one.>', 'o')) === 0, 'job completed');
    expect(await n.durability!.deadLetters('o')).toHaveLength(0);
    expect(got).toEqual(['only']);
  }, 40_000);

  it('a consumer joining on the same node while the other one holds a job gets the waiting jobs at once', async () => {
    // Before: BullMQ reads a raised concurrency only when a slot frees: the second consumer got nothing
    // until the first one's job ended (here: never, within the wait).
    const n = await node({ durable: durable({}) });
    const a = await client(n);
    const aGot: string[] = [];
    let release = (): void => {};
    a.subscribe('busy.>', {
      queue: 'b',
      durable: true,
      callback: (m) => {
        // The first job is held until release(); later ones are ACKed at once.
        aGot.push(text(m));
        return aGot.length === 1 ? new Promise<void>((r) => (release = r)) : undefined;
      },
    });
    await until(async () => (await admin!.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    await a.flush();
    const pub = await client(n);
    for (let i = 0; i < 4; i++) await pub.publish('busy.a', `b${i}`, { ack: true });
    await until(() => aGot.length === 1, 'first consumer busy with its job');
    const b = await client(n);
    const bGot: string[] = [];
    b.subscribe('busy.>', { queue: 'b', durable: true, callback: (m) => void bGot.push(text(m)) });
    await until(() => bGot.length === 3, `second consumer got the 3 waiting jobs (${bGot.length})`);
    release();
    await until(async () => (await n.durability!.backlog('busy.>', 'b')) === 0, 'backlog empty');
    expect([...aGot, ...bGot].sort()).toEqual(['b0', 'b1', 'b2', 'b3']);
    expect(await n.durability!.deadLetters('b')).toHaveLength(0);
  }, 40_000);
});

/**
 * Durable queue jobs at the edges: one BullMQ cannot even read back (its
 * stored hash is not JSON, SPEC 15.7), and one settled as its node stops
 * (SPEC 15.5). Each test runs its nodes on a redis-server of its own (bad
 * data written straight into it, CLIENT PAUSE to hold writes).
 *
 * Before: BullMQ parsed a job's `data` before the node's processor saw it;
 * a job whose data was not JSON made an 'error' event that was only logged,
 * and the job stayed active for ever (stalled, fetched again, ...), counted
 * against queues.maxJobs and never as corrupt. And a node's stop failed the
 * deliveries in progress (an attempt: with attempts 1 a job handled by its
 * consumer was given up) and started their dead letters in the background
 * while it closed its Redis connections: the letters failed ("redis not
 * reachable ... Connection is closed") and the jobs stayed in BullMQ's
 * failed jobs, neither dead-lettered nor published on `_DLQ.<group>`.
 */
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { connect, type Client, type Msg } from '@meshbus/sdk';
import { nodeKit, ownRedisServers, sleep, until } from '@meshbus/testkit';
import { jsonLogger, startNode, type Logger, type MeshNode, type NodeOptions } from '../src/index.js';
import { bullPrefix, dlqName, queueName } from '../src/durable/queue-names.js';

// Registered first: its servers stop after the kit's nodes closed (after-hooks run last registered first).
const redis = ownRedisServers();
const kit = nodeKit<MeshNode>({ start: startNode });
const text = (m: Msg): string => Buffer.from(m.data).toString();

function capture(): { logger: Logger; records: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = jsonLogger('warn', {}, (l) => void lines.push(l));
  return { logger, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

async function setup(ctx: { skip(note?: string): void }): Promise<{ url: string; admin: Redis; client: (n: MeshNode) => Promise<Client> }> {
  const server = await redis.start(ctx);
  const admin = new Redis(server.port, '127.0.0.1');
  kit.defer(() => void admin.disconnect());
  await admin.ping();
  const client = async (n: MeshNode): Promise<Client> => kit.track(await connect(`127.0.0.1:${n.port}`, { reconnectBackoff: { base: 20, max: 100 } }));
  return { url: server.url, admin, client };
}

/** The jobs of BullMQ queue `name` (prefix `prefix`) in each state. */
async function states(admin: Redis, prefix: string, name: string): Promise<Record<string, number>> {
  const k = `${bullPrefix(prefix)}:${name}`;
  return {
    wait: await admin.llen(`${k}:wait`),
    active: await admin.llen(`${k}:active`),
    delayed: await admin.zcard(`${k}:delayed`),
    failed: await admin.zcard(`${k}:failed`),
    completed: await admin.zcard(`${k}:completed`),
  };
}

describe('durable queue: a job BullMQ cannot read back (SPEC 15.7)', () => {
  it('a queue job whose stored data is not JSON is dropped at once and counted, never left active; the jobs after it are delivered', async (ctx) => {
    const prefix = 'pj:';
    const { url, admin, client } = await setup(ctx);
    const { logger, records } = capture();
    const n = await kit.node({ logger, durable: { redis: url, prefix, queues: { attempts: 2, backoffMs: 50, ackTimeoutMs: 5000 } } });
    const c = await client(n);
    // The queue exists, with no consumer: the jobs wait.
    const setupSub = c.subscribe('pj.>', { queue: 'g', durable: true, callback: () => {} });
    await until(async () => (await admin.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    setupSub.unsubscribe();
    await c.flush();
    await c.publish('pj.a', 'poison', { ack: true });
    const name = queueName('pj.>', 'g');
    const key = `${bullPrefix(prefix)}:${name}`;
    const [id] = await admin.lrange(`${key}:wait`, 0, -1);
    expect(id).toBeDefined();
    await admin.hset(`${key}:${id}`, 'data', '{not json');
    for (const v of ['g1', 'g2', 'g3']) await c.publish('pj.a', v, { ack: true });
    const got: string[] = [];
    c.subscribe('pj.>', { queue: 'g', durable: true, callback: (m) => void got.push(text(m)) });
    await until(() => got.length === 3, `good jobs delivered (got ${got.join(',')})`, 10_000);
    expect(got.sort()).toEqual(['g1', 'g2', 'g3']);
    // Was: active for ever (the stalled check gave it back, the worker fetched it again), corrupt 0.
    await until(async () => (await admin.exists(`${key}:${id}`)) === 0, 'the unreadable job removed', 5000);
    expect(await states(admin, prefix, name)).toEqual({ wait: 0, active: 0, delayed: 0, failed: 0, completed: 0 });
    expect(n.stats.store.corrupt).toBe(1);
    expect(await n.durability!.backlog('pj.>', 'g')).toBe(0);
    expect(await n.durability!.deadLetters('g')).toHaveLength(0);
    // One line says it (throttled), not an endless "worker error".
    const said = records().filter((r) => r.msg === 'corrupt durable queue job dropped');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ level: 'warn', queue: name, job: id, err: expect.stringMatching(/data not readable/) });
    expect(records().filter((r) => r.msg === 'worker error')).toHaveLength(0);
  }, 20_000);

  it('a delayed publish whose stored data is not JSON is dropped when due and counted, never left active; others still publish', async (ctx) => {
    const prefix = 'pd:';
    const { url, admin, client } = await setup(ctx);
    const { logger, records } = capture();
    const n = await kit.node({ logger, durable: { redis: url, prefix, topics: [{ pattern: 'pd.>', history: { size: 10 } }], queues: { attempts: 2, backoffMs: 50 } } });
    const sub = await client(n);
    const got: string[] = [];
    sub.subscribe('pd.>', { callback: (m) => void got.push(text(m)) });
    await sub.flush();
    const pub = await client(n);
    await pub.publish('pd.a', 'poison', { delay: 800, ack: true });
    const key = `${bullPrefix(prefix)}:delayed`;
    let id: string | undefined;
    await until(async () => (id = (await admin.zrange(`${key}:delayed`, 0, -1))[0]) !== undefined, 'the delayed job stored');
    await admin.hset(`${key}:${id}`, 'data', '{not json');
    await pub.publish('pd.b', 'good', { delay: 800, ack: true });
    await until(() => got.includes('good'), 'the good delayed publish published', 10_000);
    await until(async () => (await admin.exists(`${key}:${id}`)) === 0, 'the unreadable delayed job removed', 5000);
    expect(await states(admin, prefix, 'delayed')).toEqual({ wait: 0, active: 0, delayed: 0, failed: 0, completed: 0 });
    expect(got).toEqual(['good']);
    expect(n.stats.store.corrupt).toBe(1);
    expect(records().filter((r) => r.msg === 'corrupt delayed publish dropped')).toHaveLength(1);
  }, 20_000);
});

describe('durable queue: jobs settled as their node stops (SPEC 15.5)', () => {
  it('jobs NACKed as the node stops are dead-lettered before it closes its connections (was: letters cut by its own stop)', async (ctx) => {
    const prefix = 'ps:';
    const { url, admin, client } = await setup(ctx);
    const { logger, records } = capture();
    const durable: NodeOptions['durable'] = { redis: url, prefix, queues: { attempts: 1, ackTimeoutMs: 60_000 } };
    const a = await kit.node({ logger, durable });
    const c = await client(a);
    const got: string[] = [];
    let release = (): void => {};
    const released = new Promise<void>((r) => (release = r));
    for (let i = 0; i < 3; i++) {
      c.subscribe('ps.>', {
        queue: 'd',
        durable: true,
        callback: async (m) => {
          got.push(text(m));
          await released;
          throw new Error('refused');
        },
      });
    }
    await until(async () => (await admin.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    await c.flush();
    const pub = await client(a);
    for (const v of ['j1', 'j2', 'j3']) await pub.publish('ps.a', v, { ack: true });
    await until(() => got.length === 3, 'three jobs in delivery');
    // The NACKs reach the node now; their moves to the failed jobs (and the letters after them) wait for
    // the pause: the node is stopping by the time they are written.
    await admin.call('CLIENT', 'PAUSE', '700', 'WRITE');
    release();
    await sleep(150);
    await a.close();
    const dlq = `${bullPrefix(prefix)}:${dlqName('d')}`;
    expect(await admin.llen(`${dlq}:wait`)).toBe(3);
    expect(await states(admin, prefix, queueName('ps.>', 'd'))).toEqual({ wait: 0, active: 0, delayed: 0, failed: 0, completed: 0 });
    expect(a.stats.store.deadLetters.queue).toBe(3);
    expect(records().filter((r) => String(r.msg).startsWith('dead-lettering'))).toEqual([]);
    // Another node reads them: the event, its topic, the consumer's error.
    const b = await kit.node({ durable });
    const letters = await b.durability!.deadLetters('d');
    expect(letters.map((l) => l.topic)).toEqual(['ps.a', 'ps.a', 'ps.a']);
    expect(letters.every((l) => /refused/.test(l.error) && l.attempts === 1)).toBe(true);
  }, 20_000);

  it("a delivery cut by its node's stop costs no attempt: with attempts 1 the job goes to a consumer on another node, no dead letter", async (ctx) => {
    const prefix = 'pa:';
    const { url, admin, client } = await setup(ctx);
    const durable: NodeOptions['durable'] = { redis: url, prefix, queues: { attempts: 1, ackTimeoutMs: 60_000 } };
    const a = await kit.node({ durable, drainTimeout: 1000 });
    const b = await kit.node({ durable });
    const slow = await client(a);
    const seen: string[] = [];
    // Handles the job, but its ACK would come after its node stopped.
    slow.subscribe('pa.>', { queue: 'h', durable: true, callback: (m) => new Promise<void>(() => void seen.push(text(m))) });
    await until(async () => (await admin.smembers(`${prefix}queues`)).length === 1, 'queue registered');
    await slow.flush();
    const pub = await client(b);
    await pub.publish('pa.a', 'held', { ack: true });
    await until(() => seen.length === 1, 'job in delivery on node a');
    await a.shutdown();
    const other = await client(b);
    const got: string[] = [];
    other.subscribe('pa.>', { queue: 'h', durable: true, callback: (m) => void got.push(text(m)) });
    // Was: failed "node stopping", its one attempt used: given up, never delivered again.
    await until(() => got.length === 1, 'job delivered on node b', 5000);
    expect(got).toEqual(['held']);
    await until(async () => (await b.durability!.backlog('pa.>', 'h')) === 0, 'backlog empty', 5000);
    expect(await b.durability!.deadLetters('h')).toHaveLength(0);
    expect(await states(admin, prefix, queueName('pa.>', 'h'))).toMatchObject({ failed: 0 });
  }, 20_000);
});

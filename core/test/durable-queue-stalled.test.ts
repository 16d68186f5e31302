import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Worker } from 'bullmq';
import type { Msg } from '@meshbus/sdk';
import { durableSuite, type RedisServer, redisServerInstalled, requireRedisServer, startRedisServer, until } from '@meshbus/testkit';
import { startNode } from '../src/index.js';
import { bullPrefix, queueName } from '../src/durable/queue-names.js';

/**
 * A durable queue job whose holder died twice while holding it (its lock
 * expired twice: a node killed, a node cut from Redis past the lock) is
 * failed by BullMQ as "stalled more than allowable limit", an
 * UnrecoverableError: no further attempt. Before, the node dead-lettered a
 * failed job only once `attemptsMade` reached `attempts`, so such a job
 * (1 attempt made of 5) was neither delivered nor dead-lettered, and
 * removeOnFail deleted it: an acknowledged event lost without a trace
 * (SPEC 15.5: a job is delivered until ACKed or dead-lettered).
 *
 * The first stall is written as BullMQ records one (the job's stall count
 * at 1); the second is real: the job held by a worker of the test's own
 * whose lock expires, then found by the node's worker's stalled check.
 */
const suite = durableSuite({ start: startNode });
const { node, client } = suite;
const text = (m: Msg): string => Buffer.from(m.data).toString();

describe('durable queue: a job stalled past BullMQ\'s limit', () => {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  let prefix = '';
  beforeAll(async () => {
    if (!redisServerInstalled()) return;
    server = await startRedisServer();
    admin = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: null });
    await admin.connect();
  });
  beforeEach(({ skip }) => {
    requireRedisServer({ skip });
    prefix = `stall${Math.random().toString(36).slice(2, 8)}:`;
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it('is dead-lettered on _DLQ.<group>, not lost (was: removed, neither delivered nor dead-lettered)', async () => {
    const n = await node({ durable: { redis: server!.url, prefix, queues: { ackTimeoutMs: 120_000 } } });
    // The queue exists (a consumer came and went); a job waits for the next consumer.
    const first = await client(n);
    first.subscribe('st.>', { queue: 'g', durable: true, callback: () => {} });
    await first.flush();
    const name = queueName('st.>', 'g');
    const bp = bullPrefix(prefix);
    await until(async () => (await admin!.sismember(`${prefix}queues`, JSON.stringify(['st.>', 'g']))) === 1, 'queue registered');
    await first.close();
    const pub = await client(n);
    await pub.publish('st.a', 'precious', { ack: true });
    // A holder of our own takes it (a short lock it never renews), as a node about to die would.
    const conn = new Redis(server!.url, { maxRetriesPerRequest: null });
    const holder = new Worker(name, undefined, { connection: conn, prefix: bp, lockDuration: 300, autorun: false });
    const job = await holder.getNextJob('holder-token');
    expect(job?.data).toBeDefined();
    const id = job!.id!;
    // One stall already recorded (an earlier holder died), and this one marked by a stalled check.
    await admin!.hset(`${bp}:${name}:${id}`, 'stc', '1');
    await admin!.sadd(`${bp}:${name}:stalled`, id);
    await until(async () => (await admin!.exists(`${bp}:${name}:${id}:lock`)) === 0, 'the holder\'s lock expired');
    await holder.close(true);
    conn.disconnect();
    // A consumer comes: its node's worker finds the stalled job (the check runs at most once per
    // stalledInterval, 30 s, per queue: the first consumer's worker ran it; its mark is that time passing).
    await admin!.del(`${bp}:${name}:stalled-check`);
    const watcher = await client(n);
    const dead: string[] = [];
    watcher.subscribe('_DLQ.g', { callback: (m) => void dead.push(text(m)) });
    await watcher.flush();
    const consumer = await client(n);
    const got: string[] = [];
    consumer.subscribe('st.>', { queue: 'g', durable: true, callback: (m) => void got.push(text(m)) });
    await until(() => got.length + dead.length > 0, `the job delivered or dead-lettered (got ${got.length}, dead ${dead.length})`, 15_000);
    expect([...got, ...dead]).toEqual(['precious']);
  }, 40_000);
});

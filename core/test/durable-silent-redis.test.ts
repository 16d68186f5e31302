import { expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { Client, Status } from '@meshbus/sdk';
import { RawClient, nodeKit, ownRedisServers, sleep, until, untilResolved, type Got } from '@meshbus/testkit';
import { FrameType, decodeBody, encodeFrame } from '@meshbus/proto';
import { startNode, type MeshNode } from '../src/index.js';
import { statusClient } from './status-client.js';

/**
 * A Redis that accepts TCP and never answers (our own redis-server, paused
 * with SIGSTOP: its connections stay open, the node's ioredis connections
 * stay "ready"). Before (newcomer leftovers, session 8): the durable queue
 * registration waited on the BullMQ producer connection, which has no
 * command timeout, for ever: the SUB never joined, the client was never told,
 * no retry ran. Acked publishes to a queue topic and delayed publishes hung
 * the same way (until the client's own ackTimeout). Now every such wait is
 * bounded by durable.writeTimeoutMs (store-deadline.ts): the client gets
 * MB_ERR_STORE_UNAVAILABLE, the registration is retried on its backoff, and
 * it joins once Redis answers again.
 */
const kit = nodeKit<MeshNode>({ start: startNode });
const redis = ownRedisServers();

/** The deadline of this test's node, ms (durable.writeTimeoutMs; 5,000 by default). */
const DEADLINE = 600;

const text = (m: { data: Uint8Array }): string => Buffer.from(m.data).toString();

const client = (n: MeshNode, statuses?: Status[]): Promise<Client> => statusClient(kit, n, statuses);

it('a silent Redis: queue registration, acked and delayed publishes fail within writeTimeoutMs; the member joins once Redis answers', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await kit.node({ durable: { redis: server.url, prefix: 'silent:', topics: [{ pattern: 'stored.>' }], writeTimeoutMs: DEADLINE } });
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  const producer = await client(n);
  // The queue exists (a first member registered and left) and the delayed-publish worker runs: Redis is fully used.
  const first = await client(n);
  const s = first.subscribe('jobs.>', { queue: 'workers', durable: true, callback: () => undefined });
  await first.flush();
  await until(() => n.durability!.matcher.forTopic('jobs.1')?.queues.length === 1, 'the queue known', 10_000);
  s.unsubscribe();
  await first.flush();

  server.pause();
  const statuses: Status[] = [];
  const consumer = await client(n, statuses);
  const got: string[] = [];
  const t0 = Date.now();
  consumer.subscribe('jobs.>', { queue: 'workers', durable: true, callback: (m) => void got.push(text(m)) });
  await consumer.flush();
  const failure = (): Error | undefined => statuses.flatMap((st) => (st.type === 'error' && st.error.code === 'MB_ERR_STORE_UNAVAILABLE' ? [st.error] : []))[0];
  await until(() => failure() !== undefined, 'registration failure reported', 10 * DEADLINE);
  expect(Date.now() - t0).toBeLessThan(DEADLINE + 2000);
  expect(failure()!.message).toMatch(new RegExp(`redis did not answer the durable queue registration within ${DEADLINE} ms; the subscription joins the queue when it is back`));

  // An acked publish to a queue topic and a delayed publish: NACKed within the deadline, not left to the client's ackTimeout.
  for (const opts of [{ ack: true as const }, { ack: true as const, delay: 60_000 }]) {
    const t1 = Date.now();
    const err = await producer.publish('jobs.2', 'during the silence', { ...opts, ackTimeout: 20 * DEADLINE }).then(
      () => undefined,
      (e: unknown) => e as { code?: string; message?: string },
    );
    expect(err?.code, `${JSON.stringify(opts)}: ${err?.message}`).toBe('MB_ERR_STORE_UNAVAILABLE');
    expect(Date.now() - t1).toBeLessThan(DEADLINE + 2000);
  }

  // Redis answers again: the registration, retried on its backoff, lands; a job reaches the consumer.
  server.resume();
  await untilResolved(() => producer.publish('jobs.3', 'after the silence', { ack: true }), 'durable publish acked', 15_000, 200);
  await until(() => got.includes('after the silence'), 'the job reaches the consumer subscribed during the silence', 20_000);
}, 60_000);

it('a silent Redis: durable writes it has not answered count against the backlog bound, even once their publishers were told', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await kit.node({ durable: { redis: server.url, prefix: 'backlog:', topics: [{ pattern: 'stored.>', history: { size: 10 } }], writeTimeoutMs: 300 } });
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  const producer = await client(n);
  await producer.publish('stored.a', 'before', { ack: true });
  server.pause();
  // Each write is NACKed at its deadline, but its command stays queued in the Redis client (ioredis
  // cannot take back a command it sent): past MAX_IN_FLIGHT (20,000) of those, publishes are refused.
  const payload = Buffer.alloc(512, 1);
  const codes = new Map<string, number>();
  for (let round = 0; round < 9; round++) {
    const acks = [];
    for (let i = 0; i < 3_000; i++) acks.push(producer.publish('stored.a', payload, { ack: true, ackTimeout: 30_000 }).then(() => 'acked', (e: { code?: string }) => e.code ?? '?'));
    for (const c of await Promise.all(acks)) codes.set(c, (codes.get(c) ?? 0) + 1);
  }
  expect([...codes.keys()]).toEqual(['MB_ERR_STORE_UNAVAILABLE']);
  expect(n.stats.dropped.storeBacklog).toBeGreaterThan(0);
  server.resume();
}, 120_000);

it('a silent Redis: SUBs that read it (latest values, since) queue a bounded number of reads, and say so on their sid', async ({ skip }) => {
  const server = await redis.start({ skip });
  const n = await kit.node({ durable: { redis: server.url, prefix: 'reads:', topics: [{ pattern: 'h.>', history: { size: 10 }, latest: true }], writeTimeoutMs: 300 } });
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  const c = await RawClient.connect(n.port);
  kit.defer(() => c.close());
  const admin = new Redis(server.port, '127.0.0.1');
  kit.defer(() => void admin.disconnect());
  const reads = async (): Promise<number> => {
    const info = await admin.info('commandstats');
    return ['hget', 'evalsha', 'eval'].reduce((a, cmd) => a + Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0), 0);
  };
  const before = await reads();
  server.pause();
  // Each SUB of a topic under a latest rule reads its latest value; each read that times out stays
  // queued in the Redis client. 24,000 SUB/UNSUB pairs: at first 24,000 reads queued and nobody
  // told; then 20,000 queued and the rest refused; now a read waits its turn (replay.perNode in
  // flight) and one whose SUB is gone by then is never sent.
  const frames: Uint8Array[] = [];
  for (let sid = 1; sid <= 24_000; sid++) {
    frames.push(encodeFrame({ type: FrameType.SUB, topic: 'h.x', correlation: sid }));
    frames.push(encodeFrame({ type: FrameType.UNSUB, correlation: sid }));
  }
  c.sendBytes(Buffer.concat(frames));
  await c.flush(30_000);
  // A SUB with since is told the store did not answer (its read timed out), on its sid.
  c.sub('h.y', 99_999, { since: ['e', 0] });
  await c.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 99_999, 10_000);
  expect(c.got.find((g) => g.type === FrameType.ERROR && g.correlation === 99_999)).toMatchObject({ error: 'MB_ERR_STORE_UNAVAILABLE' });
  server.resume();
  await sleep(500);
  expect((await reads()) - before).toBeLessThan(200);
}, 120_000);

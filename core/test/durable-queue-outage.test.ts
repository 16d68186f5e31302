import { afterEach, expect, it } from 'vitest';
import type { Client, Status } from '@meshbus/sdk';
import { nodeKit, requireRedisServer, startRedisServer, until, untilResolved, type RedisServer } from '@meshbus/testkit';
import { startNode, type MeshNode } from '../src/index.js';
import { statusClient } from './status-client.js';

/**
 * A durable queue SUB made while the node's Redis is down (newcomer review,
 * 2026-11-30). Before: the node kept the subscription in its routing table
 * and told the client the registration failed, but never registered it when
 * Redis came back, and the client kept the subscription too (the error is
 * not a refusal): it looked alive and got no job, ever. Now the node joins
 * the queue once Redis answers again.
 */
const kit = nodeKit<MeshNode>({ start: startNode });
let server: RedisServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

const text = (m: { data: Uint8Array }): string => Buffer.from(m.data).toString();

const client = (n: MeshNode, statuses?: Status[]): Promise<Client> => statusClient(kit, n, statuses);

/** A durable node whose Redis (our own, its `port` returned) was up and is now down, as the node has seen. */
async function nodeAfterOutage(prefix: string): Promise<{ n: MeshNode; port: number }> {
  server = await startRedisServer();
  const port = server.port;
  const n = await kit.node({ durable: { redis: `redis://127.0.0.1:${port}`, prefix, topics: [{ pattern: 'jobs.>' }] } });
  await until(() => n.stats.store.redisUp === 1, 'redis up', 10_000);
  await server.stop();
  server = undefined;
  await until(() => n.stats.store.redisUp === 0, 'redis seen down', 10_000);
  return { n, port };
}

it('a durable queue SUB made during a Redis outage joins the queue when Redis is back, and gets its jobs', async ({ skip }) => {
  requireRedisServer({ skip });
  const { n, port } = await nodeAfterOutage('outage:');

  const statuses: Status[] = [];
  const consumer = await client(n, statuses);
  const got: string[] = [];
  consumer.subscribe('jobs.>', { queue: 'workers', durable: true, callback: (m) => void got.push(text(m)) });
  await consumer.flush();
  // The client is told (a status error, not a refusal: the subscription stands)...
  const failure = (): Error | undefined => statuses.flatMap((s) => (s.type === 'error' && s.error.code === 'MB_ERR_STORE_UNAVAILABLE' ? [s.error] : []))[0];
  await until(() => failure() !== undefined, 'registration failure reported', 10_000);
  const reported = failure()!;
  expect(reported.message).toMatch(/redis not reachable/);
  expect(reported.message).toMatch(/when it is back/);

  // ...and the node joins the queue once Redis answers again: the job published then reaches the consumer.
  server = await startRedisServer([], port);
  await until(() => n.stats.store.redisUp === 1, 'redis up again', 15_000);
  const producer = await client(n);
  await untilResolved(() => producer.publish('jobs.1', 'after the outage', { ack: true }), 'durable publish acked', 15_000, 200);
  await until(() => got.includes('after the outage'), 'the job reaches the consumer subscribed during the outage', 15_000);
  expect(n.durability!.matcher.forTopic('jobs.1')?.queues.map((q) => q.group)).toEqual(['workers']);
}, 60_000);

it('a durable queue SUB that leaves during the outage is not joined when Redis is back', async ({ skip }) => {
  requireRedisServer({ skip });
  const { n, port } = await nodeAfterOutage('outage2:');

  const gone = await client(n);
  const sub = gone.subscribe('jobs.>', { queue: 'left', durable: true, callback: () => undefined });
  await gone.flush();
  sub.unsubscribe();
  await gone.flush();

  // A second member that stays: once it has joined, the one that left must not have (it would hold jobs for ackTimeoutMs each).
  const stays = await client(n);
  const got: string[] = [];
  stays.subscribe('jobs.>', { queue: 'left', durable: true, callback: (m) => void got.push(text(m)) });
  await stays.flush();
  server = await startRedisServer([], port);
  await until(() => n.stats.store.redisUp === 1, 'redis up again', 15_000);
  const producer = await client(n);
  for (let i = 0; i < 3; i++) await untilResolved(() => producer.publish('jobs.x', `j${i}`, { ack: true }), 'durable publish acked', 15_000, 200);
  await until(() => got.length === 3, 'every job reaches the member that stayed', 15_000);
  expect(got.sort()).toEqual(['j0', 'j1', 'j2']);
}, 60_000);

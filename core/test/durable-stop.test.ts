import { afterEach, expect, it } from 'vitest';
import { durableSuite, type RedisServer, requireRedisServer, startRedisServer, until } from '@meshbus/testkit';
import { startNode } from '../src/index.js';

/**
 * A node stops while its Redis is down (SIGTERM during an outage). Before:
 * node.close() never returned: the Redis connections with an offline queue
 * (queue workers, pub/sub) were QUIT, and the QUIT waited in that queue for a
 * Redis that did not come back.
 */
const suite = durableSuite({ start: startNode });
const { node, client } = suite;
let server: RedisServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

it('a node whose Redis is down stops', async ({ skip }) => {
  requireRedisServer({ skip });
  server = await startRedisServer();
  const n = await node({ durable: { redis: server.url, prefix: 'stop:', topics: [{ pattern: 'h.>', history: { size: 10 } }] } });
  const c = await client(n);
  const got: string[] = [];
  c.subscribe('q.>', { queue: 'g', durable: true, callback: () => void got.push('job') });
  await until(() => (n.durability!.matcher.forTopic('q.a')?.queues.length ?? 0) > 0, 'queue registered');
  await c.publish('q.a', 'x', { ack: true });
  await until(() => got.length === 1, 'job delivered');
  await server.stop();
  await until(() => n.stats.store.redisUp === 0, 'Redis seen down');
  // Every connection is reconnecting by now (they all lost the same server).
  await new Promise((r) => setTimeout(r, 500));
  // A command waiting for Redis, as BullMQ's lock renewals and stalled checks do on the worker connection
  // during an outage (white box: the node's connections are private). Those with an offline queue keep it.
  for (const conn of (n.durability as unknown as { conns: Array<{ ping(): Promise<unknown> }> }).conns) conn.ping().catch(() => {});
  let stopped = false;
  const closing = n.close().then(() => void (stopped = true));
  await until(() => stopped, 'node.close() returned', 15_000).finally(() => void closing);
  expect(stopped).toBe(true);
}, 40_000);

it('a job settled while Redis is down does not make the stop spin (BullMQ retried its move on the dropped connection at once, for ever, at 100 % CPU)', async ({ skip }) => {
  requireRedisServer({ skip });
  server = await startRedisServer();
  const n = await node({ durable: { redis: server.url, prefix: 'spin:' } });
  const c = await client(n);
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let got = 0;
  // An async callback: the job is ACKed (or, on the node's stop, failed) only once Redis is gone.
  c.subscribe('q.>', { queue: 'g', durable: true, callback: async () => void (got++, await held) });
  await until(() => (n.durability!.matcher.forTopic('q.a')?.queues.length ?? 0) > 0, 'queue registered');
  await c.publish('q.a', 'x', { ack: true });
  await until(() => got === 1, 'job delivered');
  await server.stop();
  await until(() => n.stats.store.redisUp === 0, 'Redis seen down');
  release(); // the ACK goes out: the worker's move waits for Redis in its offline queue
  await new Promise((r) => setTimeout(r, 300));
  let stopped = false;
  const closing = n.close().then(() => void (stopped = true));
  // On the old code the event loop never came back here: no timer fired, the test hung.
  await until(() => stopped, 'node.close() returned', 15_000).finally(() => void closing);
  expect(stopped).toBe(true);
}, 40_000);

import { afterEach, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Queue, Worker } from 'bullmq';
import { ownRedisServers, sleep } from '@meshbus/testkit';
import { quietConnections } from '../src/durable/bullmq-guard.js';

/**
 * A BullMQ queue or worker closed while its connection is still starting
 * (Redis accepts connections and says nothing: SIGSTOP), then the connection
 * ends. BullMQ 5 emits 'error' on its connection object after close()
 * removed every listener, which throws inside a promise handler: an
 * unhandled rejection ("Connection is closed.", or ECONNRESET when Redis
 * dies), which ends a process that embeds a node under Node's default rules.
 * Seen as a CI flake of durable-silent-redis.test.ts under load (the node
 * closing while a worker made during the silence was still starting).
 * quietConnections (durable/bullmq-guard.ts) gives the node's queues and
 * workers BullMQ 6.7's rule: emit only when something listens.
 */
const redis = ownRedisServers();
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown): void => void unhandled.push(e);
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

it('a queue and a worker closed while their connection starts, then the connection ends: no unhandled rejection', async ({ skip }) => {
  const server = await redis.start({ skip });
  const conn = new Redis(server.url, { maxRetriesPerRequest: null, retryStrategy: () => null });
  conn.on('error', () => {});
  await conn.ping();
  server.pause();
  // Taken over from vitest for this test: it would count one as a failure of the run, not of this test.
  const vitestHandlers = process.listeners('unhandledRejection');
  process.removeAllListeners('unhandledRejection');
  process.on('unhandledRejection', onUnhandled);
  try {
    const queue = quietConnections(new Queue('guarded', { connection: conn, prefix: 'guard' }));
    const worker = quietConnections(new Worker('guarded', async () => undefined, { connection: conn, prefix: 'guard', autorun: false }));
    queue.on('error', () => {});
    worker.on('error', () => {});
    await sleep(100); // their version checks (INFO) wait on the silent server
    await Promise.allSettled([queue.close(), worker.close(true)]);
    await server.kill(); // Redis dies: the INFO in flight fails (ECONNRESET, "Connection is closed.")
    await sleep(300);
  } finally {
    process.off('unhandledRejection', onUnhandled);
    for (const h of vitestHandlers) process.on('unhandledRejection', h as (...a: unknown[]) => void);
  }
  expect(unhandled.map((e) => String((e as Error)?.message ?? e))).toEqual([]);
});

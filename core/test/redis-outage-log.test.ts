/**
 * What a node writes to its log while its Redis is down: the outage is said
 * once ("redis connection lost") and its end once ("redis reconnected"), not
 * once per reconnect attempt of each of its Redis connections (the BullMQ
 * queues' and workers' 'error' events were each logged at every attempt).
 */
import { expect, it } from 'vitest';
import { requireRedisServer, startRedisServer, tcpProxy, until, type RedisServer, cleanups } from '@meshbus/testkit';
import { connect } from '@meshbus/sdk';
import { silentLogger, startNode, type Logger, type MeshNode } from '../src/index.js';

const cleanup = cleanups();

/** A TCP proxy to `port` that, while `down`, refuses by closing each connection at once (and counts them). */
async function cuttable(port: number): Promise<{ port: number; cut(): void; restore(): void; attempts(): number }> {
  let down = false;
  let attempts = 0;
  const proxy = await tcpProxy(() => {
    if (!down) return port;
    attempts++;
    return undefined;
  });
  cleanup.push(() => proxy.close());
  return {
    port: proxy.port,
    cut() {
      down = true;
      proxy.cut();
    },
    restore() {
      down = false;
    },
    attempts: () => attempts,
  };
}

it('a Redis outage is said once, not at every reconnect attempt of every queue and worker', async ({ skip }) => {
  requireRedisServer({ skip });
  const server: RedisServer = await startRedisServer();
  cleanup.push(() => server.stop());
  const proxy = await cuttable(server.port);
  const lines: string[] = [];
  const put = (o: object, msg?: string): void => void lines.push(`${msg ?? ''} ${JSON.stringify(o)}`);
  const infos: string[] = [];
  const logger: Logger = { ...silentLogger, info: (o, msg) => void infos.push(msg ?? ''), warn: put, error: put };
  const n: MeshNode = await startNode({ port: 0, logger, durable: { redis: `redis://127.0.0.1:${proxy.port}`, prefix: 'mbtest:outage:' } });
  cleanup.push(() => n.close());
  const c = await connect(`127.0.0.1:${n.port}`, { name: 'w' });
  cleanup.push(() => c.close());
  for (const q of ['a', 'b', 'c']) c.subscribe(`work.${q}`, { queue: q, durable: true, callback: () => {} });
  await until(() => ['a', 'b', 'c'].every((q) => (n.durability!.matcher.forTopic(`work.${q}`)?.queues.length ?? 0) > 0), 'queues registered');
  // An acked publish while a queue's own Redis connection is not ready yet is NACKed MB_ERR_STORE_UNAVAILABLE
  // (typed, not lost: the publisher knows); the queues connect independently, so the test publishes until acked.
  const acked = (topic: string, data: string): Promise<void> =>
    until(() => c.publish(topic, data, { ack: true }).then(() => true, (e: unknown) => {
      if ((e as { code?: string }).code !== 'MB_ERR_STORE_UNAVAILABLE') throw e;
      return false;
    }), `an acked publish on ${topic}`, 30_000, 100);
  for (const q of ['a', 'b', 'c']) await acked(`work.${q}`, 'x');
  const before = lines.length;
  proxy.cut();
  await until(() => proxy.attempts() >= 30, 'reconnect attempts', 60_000);
  const early = lines.length;
  await until(() => proxy.attempts() >= 90, 'many more reconnect attempts', 60_000);
  // The outage once from the node's connection, once from its queues' (was: 110 lines by 60 attempts, one per attempt of each queue and worker).
  expect(lines.slice(before).filter((l) => l.startsWith('redis connection lost'))).toHaveLength(1);
  expect(lines.slice(before).filter((l) => l.startsWith('durable queues lost their Redis connection'))).toHaveLength(1);
  expect(lines.length - before).toBeLessThanOrEqual(3);
  // And nothing more however long it lasts.
  expect(lines.length).toBe(early);
  proxy.restore();
  await until(() => infos.includes('redis reconnected'), 'the end of the outage said', 30_000);
  await acked('work.a', 'y');
  expect(infos.filter((l) => l === 'redis reconnected')).toHaveLength(1);
}, 90_000);

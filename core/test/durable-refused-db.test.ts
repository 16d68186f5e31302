import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { connect } from '@meshbus/sdk';
import { cleanups, ownRedisServers, until } from '@meshbus/testkit';
import { jsonLogger, startNode } from '../src/index.js';

/**
 * `--redis redis://host/99` on a server with 16 databases: ioredis's SELECT at
 * each connect fails and it goes on in database 0, saying so only in an
 * 'error' event. Before, the node had no eye for it: acknowledged durable
 * publishes were stored in database 0 (another application's, perhaps) and
 * recovery read database 99. Now every connection is dropped as it is refused
 * (no command reaches database 0), durable publishes are refused, typed, and
 * it is said once, at error. A server of its own (databases 16, Redis's default).
 */
const redis = ownRedisServers();
const cleanup = cleanups();

it('a database the Redis server does not have: said once at error, durable publishes refused, nothing written to database 0', async ({ skip }) => {
  const server = await redis.start({ skip });
  const lines: string[] = [];
  const logger = jsonLogger('info', {}, (l) => void lines.push(l));
  const n = await startNode({ port: 0, logger, durable: { redis: `${server.url}/99`, topics: [{ pattern: 'o.>', history: 5 }, { pattern: 'q.>', queue: true }] } });
  cleanup.push(() => n.close());
  const refused = (): string[] => lines.filter((l) => l.includes('redis has no database of --redis'));
  await until(() => refused().length > 0, 'the error line', 10_000);

  const c = await connect(`127.0.0.1:${n.port}`);
  cleanup.push(() => c.close());
  await expect(c.publish('o.a', 'kept?', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_STORE_UNAVAILABLE' });
  await expect(c.publish('q.a', 'job?', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_STORE_UNAVAILABLE' });
  expect(refused()).toHaveLength(1);
  expect(JSON.parse(refused()[0]!)).toMatchObject({ level: 'error', err: expect.stringMatching(/DB index/) });
  expect(n.stats.store.redisUp).toBe(0);

  const db0 = new Redis(server.url);
  cleanup.push(() => void db0.disconnect());
  expect(await db0.dbsize()).toBe(0);
});

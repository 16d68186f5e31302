import { expect, it } from 'vitest';
import { cleanups, ownRedisServers, until } from '@meshbus/testkit';
import { jsonLogger, startNode } from '../src/index.js';

/**
 * `--redis redis://host/99` on a server with 16 databases: ioredis's SELECT at
 * each connect fails and it goes on in database 0, saying so only in an
 * 'error' event, which the node had no eye for: the store ran in another
 * database than the operator named, without a word (newcomer review). Now
 * said once, at error. A server of its own (databases 16, Redis's default).
 */
const redis = ownRedisServers();
const cleanup = cleanups();

it('a database the Redis server does not have is said once, at error', async ({ skip }) => {
  const server = await redis.start({ skip });
  const lines: string[] = [];
  const logger = jsonLogger('info', {}, (l) => void lines.push(l));
  const n = await startNode({ port: 0, logger, durable: { redis: `${server.url}/99`, topics: [{ pattern: 'o.>', history: 5 }] } });
  cleanup.push(() => n.close());
  const refused = (): string[] => lines.filter((l) => l.includes('redis refused the database of --redis'));
  await until(() => refused().length > 0, 'the error line', 10_000);
  await new Promise((r) => setTimeout(r, 300));
  expect(refused()).toHaveLength(1);
  expect(JSON.parse(refused()[0]!)).toMatchObject({ level: 'error', err: expect.stringMatching(/DB index/) });
});

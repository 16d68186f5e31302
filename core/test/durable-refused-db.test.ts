import { Redis } from 'ioredis';
import { expect, it } from 'vitest';
import { connect } from '@meshbus/sdk';
import { cleanups, ownRedisServers, until } from '@meshbus/testkit';
import { jsonLogger, startNode } from '../src/index.js';
import { connectRedis, refusedDatabaseGuard } from '../src/durable/redis-connect.js';

/**
 * A database the server refuses to SELECT: `--redis redis://host/99` on a
 * server with 16 databases, or a user whose ACL denies SELECT. ioredis's
 * SELECT at each connect fails and it goes on in database 0, saying so only
 * in an 'error' event. Before, the node had no eye for it (then only for the
 * first case, said at error): acknowledged durable publishes were stored in
 * database 0 (another application's, perhaps) and recovery read the named
 * one. Now every connection is dropped as it is refused (no command reaches
 * database 0), durable publishes are refused, typed, and it is said once, at
 * error. A server of its own each (databases 16, Redis's default).
 */
const redis = ownRedisServers();
const cleanup = cleanups();

it.each([
  { case: 'a database the server does not have', acl: false, db: 99, says: /DB index/ },
  { case: 'a user whose ACL denies SELECT', acl: true, db: 3, says: /NOPERM/ },
])('$case: said once at error, durable publishes refused, nothing written to database 0', async ({ acl, db, says }, ctx) => {
  const server = await redis.start(ctx);
  const admin = new Redis(server.url);
  cleanup.push(() => void admin.disconnect());
  if (acl) await admin.call('ACL', 'SETUSER', 'app', 'on', '>app-secret', '~*', '&*', '+@all', '-select');
  const url = acl ? `redis://app:app-secret@127.0.0.1:${server.port}/${db}` : `${server.url}/${db}`;
  const lines: string[] = [];
  const logger = jsonLogger('info', {}, (l) => void lines.push(l));
  const n = await startNode({ port: 0, logger, durable: { redis: url, topics: [{ pattern: 'o.>', history: 5 }, { pattern: 'q.>', queue: true }] } });
  cleanup.push(() => n.close());
  const refused = (): string[] => lines.filter((l) => l.includes('redis refused the database of --redis'));
  await until(() => refused().length > 0, 'the error line', 10_000);

  const c = await connect(`127.0.0.1:${n.port}`);
  cleanup.push(() => c.close());
  await expect(c.publish('o.a', 'kept?', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_STORE_UNAVAILABLE' });
  await expect(c.publish('q.a', 'job?', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_STORE_UNAVAILABLE' });
  expect(refused()).toHaveLength(1);
  expect(JSON.parse(refused()[0]!)).toMatchObject({ level: 'error', err: expect.stringMatching(says) });
  expect(n.stats.store.redisUp).toBe(0);
  expect(await admin.dbsize()).toBe(0);
});

it('a SELECT refused for a while (BUSY: another client running a long script) connects again, in the named database', async (ctx) => {
  // Found reviewing the change above: any refused SELECT turned durable features off until a restart.
  const server = await redis.start(ctx);
  const admin = new Redis(server.url);
  cleanup.push(() => void admin.disconnect());
  await admin.config('SET', 'busy-reply-threshold', '50');
  const said: string[] = [];
  const c = connectRedis({ kind: 'single', url: `${server.url}/1`, db: 1 }, { maxRetriesPerRequest: null });
  cleanup.push(() => void c.disconnect());
  c.on('error', refusedDatabaseGuard((err) => void said.push(err))(c));
  await until(() => c.status === 'ready', 'the connection ready');
  // Another application's script holds the server for 1.5 s; the node's connection drops meanwhile and reconnects into it.
  const script = admin.eval('local s = tonumber(redis.call("TIME")[1]) * 1000000 + tonumber(redis.call("TIME")[2]); while (tonumber(redis.call("TIME")[1]) * 1000000 + tonumber(redis.call("TIME")[2])) < s + 1500000 do end; return 1', 0).catch((e: Error) => e.message);
  await new Promise((r) => setTimeout(r, 100));
  (c as unknown as { stream: { destroy(): void } }).stream.destroy();
  await script;
  await until(() => c.status === 'ready', 'the connection ready again', 10_000);
  await c.set('where', 'here');
  expect(said).toEqual([]);
  expect(await admin.exists('where')).toBe(0);
  await admin.select(1);
  expect(await admin.get('where')).toBe('here');
}, 20_000);

it("a SELECT refused later (the user's ACL changed): no connection of the node goes on in database 0, BullMQ's worker duplicates included", async (ctx) => {
  // Review of the change above: BullMQ's duplicates of the node's connection (each worker's blocking reads) had no guard.
  const server = await redis.start(ctx);
  const admin = new Redis(server.url);
  cleanup.push(() => void admin.disconnect());
  await admin.call('ACL', 'SETUSER', 'app', 'on', '>app-secret', '~*', '&*', '+@all');
  const lines: string[] = [];
  const logger = jsonLogger('info', {}, (l) => void lines.push(l));
  const n = await startNode({ port: 0, logger, durable: { redis: `redis://app:app-secret@127.0.0.1:${server.port}/3`, topics: [{ pattern: 'q.>', queue: true }] } });
  cleanup.push(() => n.close());
  const appConns = async (): Promise<string[]> => ((await admin.client('LIST')) as string).split('\n').filter((l) => / user=app /.test(l));
  // The node's connections and the delayed-publish worker's blocking duplicate, all in database 3.
  await until(async () => (await appConns()).some((l) => / cmd=bzpopmin /.test(l)), "the worker's blocking read", 10_000);
  expect((await appConns()).every((l) => / db=3 /.test(l))).toBe(true);
  await admin.call('ACL', 'SETUSER', 'app', '-select');
  await admin.client('KILL', 'USER', 'app');
  await until(() => lines.some((l) => l.includes('redis refused the database of --redis')), 'the error line', 10_000);
  await new Promise((r) => setTimeout(r, 1500));
  // Before: the worker's duplicate reconnected past its refused SELECT and read in database 0 (cmd=bzpopmin db=0).
  expect((await appConns()).filter((l) => / db=0 /.test(l))).toEqual([]);
}, 30_000);

import { Redis } from 'ioredis';
import { requireRedisServer, startRedisServer, type RedisServer } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode, type NodeOptions } from '../src/index.js';

type Cleanups = Array<() => Promise<void> | void>;

/**
 * A node whose durability (`durable`, without `redis`) uses a redis-server
 * of its own, for tests that fill or break it on purpose, and a plain client
 * of that server to look at what it holds. Each is stopped by `cleanups`
 * (run in reverse by the caller's afterEach). Skips (or, with
 * MESHBUS_REQUIRE_REDIS=1, fails) when redis-server is not installed.
 */
export async function ownDurableNode(
  ctx: { skip(note?: string): void },
  cleanups: Cleanups,
  durable: Omit<NonNullable<NodeOptions['durable']>, 'redis'>,
  node: Omit<NodeOptions, 'durable'> = {},
): Promise<{ n: MeshNode; r: Redis; server: RedisServer }> {
  requireRedisServer(ctx);
  const server = await startRedisServer();
  cleanups.push(() => server.stop());
  const r = new Redis(server.port, '127.0.0.1');
  cleanups.push(() => void r.disconnect());
  const n = await startNode({ port: 0, logger: silentLogger, ...node, durable: { redis: server.url, ...durable } });
  cleanups.push(() => n.close());
  return { n, r, server };
}

import { createServer, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { connect, type Client } from '@meshbus/sdk';
import { freePort, nodeKit, ownRedisServers, requireRedisServer, until, untilResolved } from '@meshbus/testkit';
import { startNode, type MeshNode } from '../src/index.js';

/**
 * A node whose Redis is not reachable when it starts (README: meshbus runs
 * without Redis; durable features wait for it). Before: startNode never
 * returned: the queue set's SUBSCRIBE waited in the pub/sub connection's
 * offline queue until Redis came, so `meshbus start` opened its client port
 * only (no HTTP API, no gateway, no cluster port) and ignored SIGTERM.
 */
const kit = nodeKit<MeshNode>({ start: startNode });
const redis = ownRedisServers();

/** `p`, or a failure naming `what` after `ms` (the old code never settled). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not return within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const text = (m: { data: Uint8Array }): string => Buffer.from(m.data).toString();

async function client(n: MeshNode): Promise<Client> {
  return kit.track(await connect(`127.0.0.1:${n.port}`, { reconnectBackoff: { base: 20, max: 100 } }));
}

it('startNode with an unreachable Redis returns; durable features come up when Redis does, without a restart', async ({ skip }) => {
  requireRedisServer({ skip });
  const redisPort = await freePort(); // nothing listens there yet
  const durable = { redis: `redis://127.0.0.1:${redisPort}`, prefix: 'down:', topics: [{ pattern: 'down.>', history: { size: 10 } }, { pattern: 'later.>' }] };
  const n = await within(kit.node({ durable }), 5000, 'startNode');
  expect(n.stats.store.redisUp).toBe(0);

  // Plain events need no Redis.
  const c = await client(n);
  const plain: string[] = [];
  c.subscribe('plain.x', { callback: (m) => void plain.push(text(m)) });
  await c.flush();
  c.publish('plain.x', 'hi');
  await until(() => plain.includes('hi'), 'plain event delivered', 5000);

  // Durable writes are refused, typed, at once (not held until Redis comes).
  const refused = await within(c.publish('down.a', 'early', { ack: true }), 3000, 'durable publish').catch((e: unknown) => e as Error & { code: string });
  expect(refused).toMatchObject({ code: 'MB_ERR_STORE_UNAVAILABLE' });
  // In plain words, not the driver's ("Stream isn't writeable and enableOfflineQueue options is false").
  expect((refused as Error).message).toMatch(/redis not reachable/);
  expect((refused as Error).message).not.toMatch(/enableOfflineQueue|Stream isn't writeable/);
  await expect(within(c.publish('later.a', 'early', { ack: true, delay: 50 }), 3000, 'delayed publish')).rejects.toMatchObject({ code: 'MB_ERR_STORE_UNAVAILABLE' });

  // Redis comes up: history, delayed publish and durable queues work on the same node.
  const server = await redis.start({ skip }, [], redisPort);
  await untilResolved(() => c.publish('down.a', 'late', { ack: true }), 'durable publish acked once Redis is up', 15_000, 200);
  const delayed: string[] = [];
  c.subscribe('later.>', { callback: (m) => void delayed.push(text(m)) });
  await c.flush();
  // History answers as soon as the command connection is up; the delayed queue once the queues have started
  // (a moment later: refused MB_ERR_STORE_UNAVAILABLE meanwhile, nothing stored, so asking again is safe).
  await untilResolved(() => c.publish('later.a', 'wake', { ack: true, delay: 100 }), 'delayed publish acked once the queues started', 10_000, 100);
  await until(() => delayed.includes('wake'), 'delayed publish delivered (its worker started late)', 10_000);
  const jobs: string[] = [];
  c.subscribe('work.>', { queue: 'g', durable: true, callback: (m) => void jobs.push(text(m)) });
  await until(() => (n.durability!.matcher.forTopic('work.x')?.queues.length ?? 0) > 0, 'queue registered', 10_000);
  await c.publish('work.x', 'job', { ack: true });
  await until(() => jobs.includes('job'), 'durable queue job delivered', 10_000);
}, 60_000);

it('a node whose Redis never came up closes at once', async ({ skip }) => {
  requireRedisServer({ skip });
  const n = await within(kit.node({ durable: { redis: `redis://127.0.0.1:${await freePort()}`, topics: [{ pattern: 'down.>' }] } }), 5000, 'startNode');
  const t0 = Date.now();
  await within(n.shutdown(), 5000, 'shutdown');
  expect(Date.now() - t0).toBeLessThan(2000);
});

it('a Redis address that accepts connections but never answers: startNode returns within its 3 s, durable publishes are refused', async () => {
  const held: Socket[] = [];
  const silent = createServer((s) => void held.push(s));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  kit.defer(async () => {
    for (const s of held) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });
  const port = (silent.address() as { port: number }).port;
  const t0 = Date.now();
  const n = await within(kit.node({ durable: { redis: `redis://127.0.0.1:${port}`, topics: [{ pattern: 'down.>' }] } }), 6000, 'startNode');
  expect(Date.now() - t0).toBeLessThan(4500);
  const c = await client(n);
  await expect(within(c.publish('down.a', 'x', { ack: true }), 3000, 'durable publish')).rejects.toMatchObject({ code: 'MB_ERR_STORE_UNAVAILABLE' });
  await within(n.shutdown(), 5000, 'shutdown');
}, 20_000);

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { freePort } from '@meshbus/core';

/**
 * Redis for tests. Uses 127.0.0.1:6379 (or MESHBUS_TEST_REDIS_URL) when
 * something answers PING there; otherwise starts `redis-server` on a free
 * port (no persistence). When
 * redis-server is not installed the test is skipped with the reason printed,
 * or fails when MESHBUS_REQUIRE_REDIS=1. Every test run gets its own key
 * prefix (`mbtest:<random>:`), deleted by cleanup().
 */

export interface TestRedis {
  url: string;
  prefix: string;
  /** Deletes every key under the prefix. */
  cleanup(): Promise<void>;
}

export interface RedisServer {
  port: number;
  url: string;
  /** SIGKILL, then start again on the same port (empty: no persistence unless `args` said so). */
  restart(): Promise<void>;
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open and answers nothing (a hung Redis), until resume(). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface SkipCtx {
  skip(note?: string): void;
}

export function redisServerInstalled(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** True when a Redis on host:port answers PING within `ms`. */
export function ping(port: number, host = '127.0.0.1', ms = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    let buf = '';
    const done = (ok: boolean): void => {
      clearTimeout(t);
      sock.destroy();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), ms);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

/** Starts a redis-server of our own on a free port (or `port`), without persistence unless `args` enable it. */
export async function startRedisServer(args: string[] = [], port?: number): Promise<RedisServer> {
  const p = port ?? (await freePort());
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await ping(p))) {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${p} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await start();
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    start,
    kill,
    stop: kill,
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    restart: async () => {
      await kill();
      await start();
    },
  };
}

const started: RedisServer[] = [];

/**
 * A Redis for this test file: the local one, or one we start. Skips the
 * test (ctx.skip) with a printed reason when there is none and none can be
 * started; throws instead when MESHBUS_REQUIRE_REDIS=1.
 */
export async function testRedis(ctx: SkipCtx): Promise<TestRedis> {
  let url: string | undefined;
  const shared = sharedRedisUrl();
  if (await ping(Number(shared.port || 6379), shared.hostname || '127.0.0.1')) url = shared.href;
  else if (redisServerInstalled()) {
    const s = await startRedisServer();
    started.push(s);
    url = s.url;
  } else {
    const reason = `no Redis at ${shared.href} and redis-server is not installed (apt-get install redis-server)`;
    if (process.env.MESHBUS_REQUIRE_REDIS === '1') throw new Error(`MESHBUS_REQUIRE_REDIS=1 but ${reason}`);
    console.warn(`[durable tests] skipped: ${reason}`);
    ctx.skip(reason);
    throw new Error('unreachable');
  }
  const prefix = `mbtest:${randomBytes(6).toString('hex')}:`;
  return { url, prefix, cleanup: () => deleteKeys(url!, prefix) };
}

/** The shared Redis the tests try first: MESHBUS_TEST_REDIS_URL, default redis://127.0.0.1:6379. */
export function sharedRedisUrl(): URL {
  return new URL(process.env['MESHBUS_TEST_REDIS_URL'] || 'redis://127.0.0.1:6379');
}

/** Requires redis-server itself (for tests that restart their own); same skip rules. */
export function requireRedisServer(ctx: SkipCtx): void {
  if (redisServerInstalled()) return;
  const reason = 'redis-server is not installed (apt-get install redis-server)';
  if (process.env.MESHBUS_REQUIRE_REDIS === '1') throw new Error(`MESHBUS_REQUIRE_REDIS=1 but ${reason}`);
  console.warn(`[durable tests] skipped: ${reason}`);
  ctx.skip(reason);
}

export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  r.on('error', () => {});
  try {
    await r.connect();
    // The node's keys start with the prefix; BullMQ's with `{<prefix>` (its hash-tagged prefix).
    for (const match of [`${prefix}*`, `{${prefix}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', match.replace(/[[\]]/g, '\\$&'), 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await r.del(...keys);
      } while (cursor !== '0');
    }
  } catch {
    /* the server may be gone already */
  } finally {
    r.disconnect();
  }
}

/** Stops the redis-servers this file started. */
export async function stopStartedRedis(): Promise<void> {
  for (const s of started.splice(0)) await s.stop();
}

/**
 * The Redis side of the chaos engine's durable checks (chaos-durable.ts):
 * finding or starting a Redis for a run, and reading and cleaning up the
 * keys a run leaves in it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { bullPrefix, queueName } from '@meshbus/core/durable';
import { freePort } from '@meshbus/core';

// ---------------------------------------------------------------- Redis

/** True when a Redis on host:port answers PING within `ms`. */
export function pingRedis(port: number, host = '127.0.0.1', ms = 500): Promise<boolean> {
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


export interface ChaosRedis {
  url: string;
  prefix: string;
  /** Deletes the run's keys and stops a redis-server we started. */
  release(): Promise<void>;
}

/**
 * A Redis for a chaos run: `url` when given ('off': none), else
 * MESHBUS_TEST_REDIS_URL (default 127.0.0.1:6379) when it answers PING, else a redis-server of our own on a
 * free port (no persistence). Undefined (with the reason) when none.
 */
export async function findRedis(url: string | undefined): Promise<ChaosRedis | string> {
  if (url === 'off') return 'disabled (--redis off)';
  let child: ChildProcess | undefined;
  // The test suites' shared Redis (@meshbus/testkit's testRedis reads the same variable).
  const shared = new URL(process.env['MESHBUS_TEST_REDIS_URL'] || 'redis://127.0.0.1:6379');
  if (url && url !== 'auto') {
    const u = new URL(url);
    if (!(await pingRedis(Number(u.port || 6379), u.hostname || '127.0.0.1', 1000))) return `no Redis (${url} does not answer PING)`;
  } else if (await pingRedis(Number(shared.port || 6379), shared.hostname || '127.0.0.1')) {
    url = shared.href;
  } else if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0) {
    const port = await freePort();
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await pingRedis(port))) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        return 'no Redis (redis-server did not start)';
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    url = `redis://127.0.0.1:${port}`;
  } else {
    return `no Redis (nothing at ${shared.href}, redis-server not installed)`;
  }
  const prefix = `chaos:${randomBytes(5).toString('hex')}:`;
  const redisUrl = url;
  return {
    url: redisUrl,
    prefix,
    release: async () => {
      await deleteKeys(redisUrl, prefix);
      if (child && child.exitCode === null) {
        const c = child;
        await new Promise<void>((r) => {
          c.once('exit', () => r());
          c.kill('SIGKILL');
        });
      }
    },
  };
}

export async function withRedis<T>(url: string, fn: (r: Redis) => Promise<T>): Promise<T | undefined> {
  const r = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  r.on('error', () => {});
  try {
    await r.connect();
    return await fn(r);
  } catch {
    return undefined;
  } finally {
    r.disconnect();
  }
}

export async function deleteKeys(url: string, prefix: string): Promise<void> {
  await withRedis(url, async (r) => {
    // The node's keys, and BullMQ's under its hash-tagged prefix `{<prefix>bull}`.
    for (const match of [`${prefix}*`, `${bullPrefix(prefix)}*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', match, 'COUNT', 1000);
        cursor = next;
        if (keys.length > 0) await r.del(...keys);
      } while (cursor !== '0');
    }
  });
}

/** Job numbers still queued (waiting, active, delayed, prioritized, paused) in the BullMQ queue of (pattern, group). */
export async function queuedJobs(url: string, prefix: string, pattern: string, group: string): Promise<Set<number>> {
  const out = new Set<number>();
  await withRedis(url, async (r) => {
    const base = `${bullPrefix(prefix)}:${queueName(pattern, group)}`;
    const ids = new Set<string>([
      ...(await r.lrange(`${base}:wait`, 0, -1)),
      ...(await r.lrange(`${base}:active`, 0, -1)),
      ...(await r.lrange(`${base}:paused`, 0, -1)),
      ...(await r.zrange(`${base}:delayed`, 0, -1)),
      ...(await r.zrange(`${base}:prioritized`, 0, -1)),
    ]);
    for (const id of ids) {
      const data = await r.hget(`${base}:${id}`, 'data');
      if (!data) continue;
      try {
        const f = (JSON.parse(data) as { f: string }).f;
        const m = /\|J(\d+)\|/.exec(Buffer.from(f, 'base64').toString('latin1'));
        if (m) out.add(Number(m[1]));
      } catch {
        /* not ours */
      }
    }
  });
  return out;
}

// ---------------------------------------------------------------- the checks


/**
 * Redis pub/sub: a redis-server process and ioredis. A subscribed Redis
 * connection can only receive, so a client here is two connections (one to
 * publish, one to subscribe, opened on first use). Redis has no
 * request/reply: it is done the usual way, a PUBLISH carrying the reply
 * channel and a subscription to that channel.
 */
import { randomBytes } from 'node:crypto';
import { freePort, reachable, spawnServer, stopProcess, waitForPort, which } from '../proc.js';
import type { BenchClient, Target } from './types.js';

const SHARED = '127.0.0.1:6379';

type RedisCtor = typeof import('ioredis').Redis;
async function ctor(): Promise<RedisCtor> {
  return (await import('ioredis')).Redis;
}

export const redis: Target = {
  name: 'redis',
  async clusterSupport() {
    return 'Redis pub/sub has no 2-node mesh here (Redis Cluster needs 3 masters and broadcasts every PUBLISH to all)';
  },
  async unavailable() {
    try {
      await ctor();
    } catch {
      return 'the `ioredis` npm package is not installed (npm install -D -w @meshbus/bench ioredis@^5)';
    }
    if (which('redis-server')) return undefined;
    if (await reachable(SHARED)) return undefined;
    return `redis-server is not installed and nothing answers on ${SHARED}`;
  },
  async start(nodes) {
    if (nodes > 1) throw new Error('no Redis cluster in this harness');
    const bin = which('redis-server');
    if (!bin) return { urls: [SHARED], pids: [undefined], note: `shared server at ${SHARED}`, stop: async () => {} };
    const port = await freePort();
    const c = spawnServer(bin, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '20000']);
    try {
      await waitForPort(`127.0.0.1:${port}`, c);
    } catch (e) {
      await stopProcess(c);
      throw new Error(`redis-server failed: ${(e as Error).message} ${c.tail()}`);
    }
    return { urls: [`127.0.0.1:${port}`], pids: [c.pid], note: 'redis-server process (defaults, persistence off)', stop: () => stopProcess(c) };
  },
  async connect(url) {
    const Redis = await ctor();
    const [host, port] = [url.slice(0, url.lastIndexOf(':')), Number(url.slice(url.lastIndexOf(':') + 1))];
    const open = async (): Promise<InstanceType<RedisCtor>> => {
      const r = new Redis({ host, port, lazyConnect: true, enableAutoPipelining: true, maxRetriesPerRequest: null });
      r.on('error', () => {});
      r.on('close', () => disconnects++);
      await r.connect();
      return r;
    };
    let disconnects = 0;
    const pub = await open();
    let sub: InstanceType<RedisCtor> | undefined;
    const handlers = new Map<string, (data: Buffer) => void>();
    const subscribe = async (topic: string, h: (data: Buffer) => void): Promise<void> => {
      if (!sub) {
        sub = await open();
        sub.on('messageBuffer', (ch: Buffer, msg: Buffer) => handlers.get(ch.toString())?.(msg));
      }
      handlers.set(topic, h);
      await sub.subscribe(topic);
    };
    let last: Promise<unknown> = Promise.resolve();
    // Requests: [1 byte length][reply channel][4-byte id][payload].
    const inbox = `_INBOX.${randomBytes(8).toString('hex')}`;
    const inboxBytes = Buffer.from(inbox);
    let inboxReady: Promise<void> | undefined;
    let nextId = 1;
    const waiting = new Map<number, (b: Uint8Array) => void>();
    return {
      publish(topic, data) {
        last = pub.publish(topic, data);
      },
      async flush() {
        await last;
      },
      subscribe: (topic, onMsg) => subscribe(topic, onMsg),
      fill: () => Promise.reject(new Error('no filler subscriptions for Redis in this harness')),
      churn: () => Promise.reject(new Error('no subscription churn for Redis in this harness')),
      serve: (topic) =>
        subscribe(topic, (m) => {
          const n = m[0]!;
          const reply = m.subarray(1, 1 + n).toString();
          void pub.publish(reply, m.subarray(1 + n));
        }),
      async request(topic, data, timeoutMs) {
        inboxReady ??= subscribe(inbox, (m) => {
          const id = m.readUInt32LE(0);
          const w = waiting.get(id);
          if (w) {
            waiting.delete(id);
            w(m.subarray(4));
          }
        });
        await inboxReady;
        const id = nextId++;
        const head = Buffer.allocUnsafe(1 + inboxBytes.length + 4);
        head[0] = inboxBytes.length;
        inboxBytes.copy(head, 1);
        head.writeUInt32LE(id, 1 + inboxBytes.length);
        return new Promise<Uint8Array>((resolve, reject) => {
          const t = setTimeout(() => {
            waiting.delete(id);
            reject(new Error('timeout'));
          }, timeoutMs);
          waiting.set(id, (b) => {
            clearTimeout(t);
            resolve(b);
          });
          void pub.publish(topic, Buffer.concat([head, data])).then((n) => {
            if (n === 0) {
              clearTimeout(t);
              waiting.delete(id);
              reject(new Error('no responders'));
            }
          });
        });
      },
      get disconnects() {
        return disconnects;
      },
      async close() {
        pub.disconnect();
        sub?.disconnect();
      },
    } satisfies BenchClient;
  },
};

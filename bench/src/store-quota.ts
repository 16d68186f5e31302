/**
 * Store quotas (SPEC 15.8), measured against a node without them in the
 * same run (A/B as ratios: the machine is shared). Each variant gets a
 * redis-server of its own (never the shared one), default quotas.
 *
 * - delayed attack: `--delayed` acked publishes of `--delayed-size` bytes with
 *   a one-day delay: ACKs, NACKs, Redis used_memory growth (MB);
 * - topic attack: `--topics` acked publishes of 1 KiB, each on a new topic of
 *   a history rule (size 10): ACKs, NACKs, keys, used_memory growth (MB);
 * - cost: acked durable publishes of 100 bytes, `--events` per round in
 *   windows of 100, on one topic (the common case) and on new topics
 *   (first event of each: one more script), rounds alternating A and B;
 *   median events/s per variant and the ratio new/old.
 *
 * Usage: node bench/dist/store-quota.js --base /path/to/other/core/dist/index.js
 *   [--delayed 150] [--delayed-size 1000000] [--topics 20000] [--events 4000] [--rounds 5]
 * Prints one JSON line. Needs redis-server on PATH.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import * as here from '@meshbus/core';
import { connect, type Client } from '@meshbus/sdk';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    delayed: { type: 'string', default: '150' },
    'delayed-size': { type: 'string', default: '1000000' },
    topics: { type: 'string', default: '20000' },
    events: { type: 'string', default: '4000' },
    rounds: { type: 'string', default: '5' },
  },
});
if (!values.base) throw new Error('--base <core/dist/index.js of the code without quotas> is required');

type Core = typeof here;
type Node = Awaited<ReturnType<Core['startNode']>>;

/** The redis-servers this run started: killed when it exits, also on an error (none left behind). */
const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

async function redisServer(): Promise<{ url: string; r: Redis; stop: () => void }> {
  const port = await here.freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  children.push(child);
  const r = new Redis(port, '127.0.0.1', { retryStrategy: () => 50 });
  r.on('error', () => {});
  await r.ping();
  return { url: `redis://127.0.0.1:${port}`, r, stop: () => (r.disconnect(), child.kill('SIGKILL')) };
}

const used = async (r: Redis): Promise<number> => Number(/used_memory:(\d+)/.exec(await r.info('memory'))![1]) / 1e6;

async function settle(ps: Array<Promise<unknown>>): Promise<{ ack: number; nack: number }> {
  const rs = await Promise.allSettled(ps);
  const ack = rs.filter((x) => x.status === 'fulfilled').length;
  return { ack, nack: rs.length - ack };
}

async function variant(core: Core) {
  const redis = await redisServer();
  const node: Node = await core.startNode({
    port: 0,
    logger: core.silentLogger,
    durable: { redis: redis.url, prefix: 'b:', topics: [{ pattern: 'later.>' }, { pattern: 'h.>', history: { size: 10 } }, { pattern: 'cost.>', history: { size: 1000 }, maxTopics: 1_000_000 }] },
  });
  const c: Client = await connect(`127.0.0.1:${node.port}`);
  return { node, c, redis };
}

async function attacks(v: Awaited<ReturnType<typeof variant>>) {
  const { c, redis } = v;
  const big = new Uint8Array(Number(values['delayed-size'])).fill(1);
  let m0 = await used(redis.r);
  const t0 = performance.now();
  const delayed = await settle(Array.from({ length: Number(values.delayed) }, () => c.publish('later.x', big, { ack: true, delay: 86_400_000 })));
  const delayedMs = performance.now() - t0;
  const delayedMB = (await used(redis.r)) - m0;
  m0 = await used(redis.r);
  const small = new Uint8Array(1024).fill(2);
  const n = Number(values.topics);
  let topics = { ack: 0, nack: 0 };
  for (let i = 0; i < n; i += 500) {
    const r = await settle(Array.from({ length: Math.min(500, n - i) }, (_, k) => c.publish(`h.t${i + k}`, small, { ack: true })));
    topics = { ack: topics.ack + r.ack, nack: topics.nack + r.nack };
  }
  const topicMB = (await used(redis.r)) - m0;
  const keys = await redis.r.dbsize();
  return { delayed: { ...delayed, ms: Math.round(delayedMs), redisMB: +delayedMB.toFixed(1) }, topics: { ...topics, keys, redisMB: +topicMB.toFixed(1) } };
}

async function round(c: Client, n: number, topic: (i: number) => string): Promise<number> {
  const payload = new Uint8Array(100);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => c.publish(topic(i + k), payload, { ack: true })));
  return n / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const old = (await import(values.base)) as Core;
const A = await variant(old);
const B = await variant(here);
const result: Record<string, unknown> = {};
result.old = await attacks(A);
result.new = await attacks(B);
const hot: Record<'old' | 'new', number[]> = { old: [], new: [] };
const fresh: Record<'old' | 'new', number[]> = { old: [], new: [] };
for (let r = 0; r < Number(values.rounds); r++) {
  // Which variant goes first alternates with the round.
  const order = [['old', A], ['new', B]] as const;
  for (const [k, v] of r % 2 === 0 ? order : [order[1], order[0]]) {
    hot[k].push(await round(v.c, Number(values.events), () => 'cost.one'));
    // New topics each round, a quarter as many (cost.> has maxTopics 1,000,000: this measures the admission, not the bound).
    fresh[k].push(await round(v.c, Math.floor(Number(values.events) / 4), (i) => `cost.r${r}.${i}`));
  }
}
result.cost = {
  oneTopic: { oldPerSec: Math.round(median(hot.old)), newPerSec: Math.round(median(hot.new)), ratio: +(median(hot.new) / median(hot.old)).toFixed(3) },
  newTopics: { oldPerSec: Math.round(median(fresh.old)), newPerSec: Math.round(median(fresh.new)), ratio: +(median(fresh.new) / median(fresh.old)).toFixed(3) },
};
console.log(JSON.stringify(result));
for (const v of [A, B]) {
  await v.c.close();
  await v.node.close();
  v.redis.stop();
}

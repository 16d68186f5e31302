import { ClientError } from '@meshbus/proto';
import type { Client } from '@meshbus/sdk';
import { UsageError, checkTopic, durationOption, intOption, noExtraArgs, positional, type ParsedArgs } from './command-spec.js';
import { BENCH } from './command-specs.js';
import { clientTarget, openClient } from './client-connect.js';

/** What `meshbus bench` measured. Rates are per second of wall time; MB = 10^6 bytes of payload. */
export interface BenchResult {
  topic: string;
  publishers: number;
  subscribers: number;
  msgs: number;
  size: number;
  pub: { msgs: number; seconds: number; msgsPerSec: number; mbPerSec: number };
  /** Deliveries to all subscribers together; `expected` = msgs × subscribers. */
  sub: { received: number; expected: number; seconds: number; msgsPerSec: number; mbPerSec: number };
  /** Publish-to-delivery latency in ms (events of 8 bytes or more carry their send time); undefined without samples. */
  latency?: { samples: number; p50: number; p90: number; p99: number; max: number };
}

/** Publishes between two flushes: bounds what a publisher has queued, so the node's flow control and slow-consumer limits are not the thing measured. */
const BATCH = 1000;
/** Latency samples kept in all (the later ones are sampled at a stride). */
const MAX_SAMPLES = 1_000_000;

const now = (): number => performance.timeOrigin + performance.now();

/** The percentile `q` (0..1) of sorted samples (nearest rank). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

interface Counters {
  published: number;
  received: number;
}

/**
 * Runs a benchmark: `subs` connections subscribed to `topic`, then `pubs`
 * connections publishing `msgs` events of `size` bytes between them (a
 * flush every 1,000). Client i connects to `servers[i % servers.length]`.
 * Resolves once every subscriber got every event or `timeoutMs` after the
 * last publish (then `sub.received < sub.expected`).
 */
export async function runBench(
  connect: (i: number) => Promise<Client>,
  o: { topic: string; pubs: number; subs: number; msgs: number; size: number; timeoutMs: number },
  progress?: (c: Counters) => void,
): Promise<BenchResult> {
  const counters: Counters = { published: 0, received: 0 };
  const clients: Client[] = [];
  const stride = Math.max(1, Math.ceil((o.msgs * o.subs) / MAX_SAMPLES));
  const samples = new Float64Array(Math.min(MAX_SAMPLES, Math.ceil((o.msgs * o.subs) / stride) + 1));
  let nSamples = 0;
  let lastReceive = 0;
  const timer = progress ? setInterval(() => progress(counters), 200) : undefined;
  try {
    for (let i = 0; i < o.subs; i++) {
      const c = await connect(clients.length);
      clients.push(c);
      c.subscribe(o.topic, {
        callback: (m) => {
          const n = ++counters.received;
          lastReceive = now();
          if (o.size >= 8 && n % stride === 0 && nSamples < samples.length) {
            const d = m.data;
            samples[nSamples++] = lastReceive - new DataView(d.buffer, d.byteOffset, 8).getFloat64(0, true);
          }
        },
      });
      await c.flush();
    }
    const publishers: Client[] = [];
    for (let i = 0; i < o.pubs; i++) {
      const c = await connect(clients.length);
      clients.push(c);
      publishers.push(c);
    }
    const shared = new Uint8Array(o.size);
    const start = now();
    await Promise.all(
      publishers.map(async (c, i) => {
        const mine = Math.floor(o.msgs / o.pubs) + (i < o.msgs % o.pubs ? 1 : 0);
        for (let sent = 0; sent < mine; ) {
          const end = Math.min(mine, sent + BATCH);
          for (; sent < end; sent++) {
            let data = shared;
            if (o.size >= 8) {
              // A buffer per event: publish() sends it without a copy.
              data = new Uint8Array(o.size);
              new DataView(data.buffer).setFloat64(0, now(), true);
            }
            c.publish(o.topic, data);
            counters.published++;
          }
          await c.flush();
        }
      }),
    );
    const pubEnd = now();
    const expected = o.msgs * o.subs;
    const deadline = pubEnd + o.timeoutMs;
    while (counters.received < expected && now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const pubSeconds = o.pubs > 0 ? (pubEnd - start) / 1000 : 0;
    const subSeconds = counters.received > 0 ? (lastReceive - start) / 1000 : 0;
    const rate = (n: number, s: number): number => (s > 0 ? n / s : 0);
    const result: BenchResult = {
      topic: o.topic,
      publishers: o.pubs,
      subscribers: o.subs,
      msgs: o.msgs,
      size: o.size,
      pub: { msgs: counters.published, seconds: pubSeconds, msgsPerSec: rate(counters.published, pubSeconds), mbPerSec: rate(counters.published * o.size, pubSeconds) / 1e6 },
      sub: { received: counters.received, expected, seconds: subSeconds, msgsPerSec: rate(counters.received, subSeconds), mbPerSec: rate(counters.received * o.size, subSeconds) / 1e6 },
    };
    if (nSamples > 0) {
      const sorted = samples.subarray(0, nSamples).sort();
      result.latency = { samples: nSamples, p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: sorted[nSamples - 1]! };
    }
    progress?.(counters);
    return result;
  } finally {
    if (timer) clearInterval(timer);
    await Promise.all(clients.map((c) => c.close()));
  }
}

const num = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The summary as printed. */
export function formatBench(r: BenchResult): string {
  const lines = [`meshbus bench ${r.topic}: ${r.publishers} publisher(s), ${r.subscribers} subscriber(s), ${num(r.msgs)} msgs of ${num(r.size)} B`];
  if (r.publishers > 0) lines.push(`  pub  ${num(r.pub.msgsPerSec).padStart(12)} msgs/s  ${num(r.pub.mbPerSec, 2).padStart(9)} MB/s  (${num(r.pub.msgs)} msgs in ${r.pub.seconds.toFixed(3)} s)`);
  if (r.subscribers > 0) {
    lines.push(`  sub  ${num(r.sub.msgsPerSec).padStart(12)} msgs/s  ${num(r.sub.mbPerSec, 2).padStart(9)} MB/s  (${num(r.sub.received)} of ${num(r.sub.expected)} deliveries in ${r.sub.seconds.toFixed(3)} s, all subscribers)`);
  }
  if (r.latency) {
    const l = r.latency;
    lines.push(`  latency ms  p50 ${l.p50.toFixed(3)}  p90 ${l.p90.toFixed(3)}  p99 ${l.p99.toFixed(3)}  max ${l.max.toFixed(3)}  (${num(l.samples)} samples)`);
  } else if (r.subscribers > 0) lines.push('  latency: not measured (--size under 8 bytes)');
  return lines.join('\n') + '\n';
}

export async function runBenchCommand(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 1, BENCH);
  const topic = checkTopic(positional(p, 0, '<topic>', BENCH), false);
  const pubs = intOption(p, 'pub', 0, 1000)!;
  const subs = intOption(p, 'sub', 0, 1000)!;
  if (pubs === 0 && subs === 0) throw new UsageError('bench: --pub and --sub are both 0: nothing to measure');
  const msgs = intOption(p, 'msgs', 1)!;
  const size = intOption(p, 'size', 0, 1 << 20)!;
  const timeoutMs = durationOption(p, 'timeout', 'ms', 1)!;
  const { servers } = clientTarget(p);
  const expected = msgs * subs;
  const tty = process.stderr.isTTY === true;
  const progress = tty
    ? (c: Counters): void => {
        const pubPart = pubs > 0 ? `published ${num(c.published)}/${num(msgs)}` : '';
        const subPart = subs > 0 ? `received ${num(c.received)}/${num(expected)}` : '';
        process.stderr.write(`\r${[pubPart, subPart].filter(Boolean).join('  ')}   `);
      }
    : undefined;
  const r = await runBench((i) => openClient({ ...p, values: { ...p.values, server: servers[i % servers.length] } }, `meshbus-bench-${i}`), { topic, pubs, subs, msgs, size, timeoutMs }, progress);
  if (tty) process.stderr.write('\n');
  process.stdout.write(p.values.json === true ? JSON.stringify(r) + '\n' : formatBench(r));
  if (r.sub.received < r.sub.expected) throw new ClientError('MB_ERR_TIMEOUT', `subscribers got ${r.sub.received} of ${r.sub.expected} deliveries within ${timeoutMs} ms of the last publish`);
  return 0;
}

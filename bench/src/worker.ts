/**
 * A benchmark client process (forked by run.ts with one JSON job): a group
 * of publishers, subscribers, responders, one requester, or idle
 * connections, all of one target. Talks to the parent over IPC:
 *
 *   parent → worker: job, then {cmd: 'start' | 'probe' | 'collect' | 'stop'}
 *   worker → parent: {ev: 'ready' | 'probed' | 'result' | 'error'}
 *
 * Event payloads carry [flag, publisher id, seq u32 LE, ...]: flag 0 is
 * warm-up, 1 measured, 2 a readiness probe. Subscribers count only flag 1.
 */
import { getTarget, type BenchClient, type TargetName } from './targets/index.js';
import { encodeHistogram, newHistogram, summarize, type LatencySummary } from './histogram.js';
import { now, sleep } from './proc.js';
import { fillerPattern } from './scenarios.js';
import { tuneAllocator } from '@meshbus/native';

export type Role = 'pub' | 'sub' | 'rep' | 'req' | 'idle' | 'fill' | 'churn';

export interface WorkerJob {
  target: TargetName;
  role: Role;
  /** URL of each connection (cycled when shorter than conns). */
  urls: string[];
  conns: number;
  topic: string;
  payload: number;
  /** Publishers: messages between two flushes. */
  batch: number;
  /** First publisher id of this process (ids are global across processes). */
  pubBase: number;
  warmupMs: number;
  durationMs: number;
  /** Subscribers: busy-wait this many µs per event (a slow consumer). */
  slowUs?: number;
  /** Publishers: cycle this many topics `bench.events.t<i>` instead of `topic`. */
  topics?: number;
  /** Subscribers: the pattern to subscribe (default `topic`). */
  subTopic?: string;
  /** Publishers: paced at this many events/s each (no flush pacing); payload bytes 6..13 carry the publish time (float64 LE, ms). */
  paceRate?: number;
  /** Subscribers: record the delivery latency of every measured event (needs paced publishers). */
  latency?: boolean;
  /** Role fill: this many non-matching subscriptions (`fillerPattern`) spread over the connections. */
  fill?: number;
  /** Role churn: subscribe + unsubscribe pairs per second of non-matching patterns (`fillerPattern`), until stopped. */
  churnRate?: number;
}

export interface PubResult {
  sent: number;
  warmSent: number;
  start: number;
  end: number;
  disconnects: number;
  /** Paced publishers: events skipped because the timer fell more than 10 ms behind. */
  skipped?: number;
}
export interface SubResult {
  received: number;
  first: number;
  last: number;
  outOfOrder: number;
  disconnects: number;
  /** This subscriber was the slow consumer. */
  slow?: boolean;
  /** Delivery latency (publish call → callback, µs) of the measured events, when asked. */
  latency?: LatencySummary;
}

type Cmd = { cmd: 'start' } | { cmd: 'probe' } | { cmd: 'fill' } | { cmd: 'churn' } | { cmd: 'collect'; expected: number; idleMs: number; maxMs: number } | { cmd: 'stop' };

const send = (m: object): void => {
  process.send?.(m);
};

async function main(job: WorkerJob): Promise<void> {
  const target = getTarget(job.target);
  const clients: BenchClient[] = [];
  // Connect a few at a time: thousands of simultaneous handshakes only measure the accept queue.
  for (let i = 0; i < job.conns; i += 50) {
    const n = Math.min(50, job.conns - i);
    clients.push(...(await Promise.all(Array.from({ length: n }, (_, k) => target.connect(job.urls[(i + k) % job.urls.length]!)))));
  }
  const handlers: Partial<Record<Cmd['cmd'], (c: Cmd) => Promise<object | void>>> = {};

  if (job.role === 'pub') setupPub(job, clients, handlers);
  else if (job.role === 'sub') await setupSub(job, clients, handlers);
  else if (job.role === 'rep') for (const c of clients) await c.serve(job.topic);
  else if (job.role === 'req') setupReq(job, clients[0]!, handlers);
  else if (job.role === 'fill') {
    handlers.fill = async () => {
      const per: string[][] = clients.map(() => []);
      for (let k = 0; k < (job.fill ?? 0); k++) per[k % clients.length]!.push(fillerPattern(k));
      await Promise.all(clients.map((c, i) => c.fill(per[i]!)));
      return { ev: 'filled' };
    };
  } else if (job.role === 'churn') handlers.churn = async () => startChurn(job, clients[0]!);

  process.on('message', (m: Cmd) => {
    if (m.cmd === 'stop') {
      void Promise.allSettled(clients.map((c) => c.close())).then(() => process.exit(0));
      setTimeout(() => process.exit(0), 2000).unref();
      return;
    }
    const h = handlers[m.cmd];
    if (!h) return;
    h(m).then(
      (r) => r && send(r),
      (e: unknown) => send({ ev: 'error', message: String((e as Error)?.stack ?? e) }),
    );
  });
  send({ ev: 'ready' });
}

/**
 * Subscribes and unsubscribes non-matching patterns at `job.churnRate` pairs
 * per second, spread over ~1 ms ticks (many clients' occasional changes arrive
 * spread in time, not in one batch), until the process is stopped. Asked
 * again, answers with the pairs made so far.
 */
const churn = { started: false, pairs: 0 };
function startChurn(job: WorkerJob, client: BenchClient): { ev: string; pairs: number } {
  if (churn.started) return { ev: 'churning', pairs: churn.pairs };
  churn.started = true;
  const perMs = (job.churnRate ?? 1000) / 1000;
  const t0 = Date.now();
  let busy = false;
  setInterval(() => {
    if (busy) return;
    // Paced by time, not by ticks: a late timer catches up, at most 10 ms worth at once.
    const due = Math.min(Math.floor((Date.now() - t0) * perMs) - churn.pairs, Math.max(1, Math.ceil(perMs * 10)));
    if (due <= 0) return;
    busy = true;
    const patterns = Array.from({ length: due }, (_, k) => fillerPattern(churn.pairs + k));
    churn.pairs += due;
    client.churn(patterns).then(
      () => (busy = false),
      (e: unknown) => send({ ev: 'error', message: String((e as Error)?.stack ?? e) }),
    );
  }, 1);
  return { ev: 'churning', pairs: 0 };
}

/** The topics a publisher cycles through. */
function topicsOf(job: WorkerJob): string[] {
  return job.topics ? Array.from({ length: job.topics }, (_, k) => `bench.events.t${k}`) : [job.topic];
}

function setupPub(job: WorkerJob, clients: BenchClient[], handlers: Partial<Record<Cmd['cmd'], (c: Cmd) => Promise<object | void>>>): void {
  const seqs = new Uint32Array(clients.length);
  const probe = Buffer.alloc(job.payload);
  probe[0] = 2;
  const topic0 = topicsOf(job)[0]!;
  handlers.probe = async () => {
    for (const c of clients) c.publish(topic0, probe);
    await Promise.all(clients.map((c) => c.flush()));
  };
  handlers.start = async () => {
    const loop = job.paceRate ? pacedLoop : pubLoop;
    const results = await Promise.all(clients.map((c, i) => loop(job, c, job.pubBase + i, seqs, i)));
    return { ev: 'result', pubs: results };
  };
}

/** Publishes `batch` events, awaits a flush, repeats: as fast as the client allows, paced by the server's answers. */
async function pubLoop(job: WorkerJob, c: BenchClient, id: number, seqs: Uint32Array, i: number): Promise<PubResult> {
  // A pool of distinct buffers per batch: clients may keep a reference until the flush (no copy on publish).
  const pool = Array.from({ length: job.batch }, () => Buffer.alloc(job.payload, 0x61));
  const topics = topicsOf(job);
  const nt = topics.length;
  const t0 = now();
  const warmEnd = t0 + job.warmupMs;
  const end = warmEnd + job.durationMs;
  let sent = 0;
  let warmSent = 0;
  let start = 0;
  let last = t0;
  for (;;) {
    const t = now();
    if (t >= end) break;
    const flag = t >= warmEnd ? 1 : 0;
    if (flag && start === 0) start = t;
    for (let k = 0; k < pool.length; k++) {
      const b = pool[k]!;
      b[0] = flag;
      b[1] = id & 0xff;
      b.writeUInt32LE(seqs[i]!, 2);
      c.publish(nt === 1 ? topics[0]! : topics[seqs[i]! % nt]!, b);
      seqs[i]!++;
    }
    if (flag) sent += pool.length;
    else warmSent += pool.length;
    await c.flush();
    last = now();
  }
  return { sent, warmSent, start, end: last, disconnects: c.disconnects };
}

/**
 * Publishes at `paceRate` events/s: every ~1 ms timer tick, the events due
 * since the start (at most 10 ms worth in one burst; a larger deficit is
 * skipped, counted in `skipped`), each stamped with the publish time. No
 * flush pacing. Buffers come from a ring of 200 ms of events, so a client
 * that keeps a payload by reference until it is written (large payloads)
 * never sees it rewritten.
 */
async function pacedLoop(job: WorkerJob, c: BenchClient, id: number, seqs: Uint32Array, i: number): Promise<PubResult> {
  const rate = job.paceRate!;
  const ring = Array.from({ length: Math.max(1024, Math.ceil(rate * 0.2)) }, () => Buffer.alloc(job.payload, 0x61));
  const maxBurst = Math.max(1, Math.ceil(rate / 100));
  const topics = topicsOf(job);
  const t0 = now();
  const warmEnd = t0 + job.warmupMs;
  const end = warmEnd + job.durationMs;
  let issued = 0;
  let r = 0;
  let sent = 0;
  let warmSent = 0;
  let skipped = 0;
  let start = 0;
  for (;;) {
    const t = now();
    if (t >= end) break;
    const flag = t >= warmEnd ? 1 : 0;
    if (flag && start === 0) start = t;
    let due = Math.floor(((t - t0) * rate) / 1000) - issued;
    if (due > maxBurst) {
      skipped += due - maxBurst;
      issued += due - maxBurst;
      due = maxBurst;
    }
    for (let k = 0; k < due; k++) {
      const b = ring[r]!;
      r = r + 1 === ring.length ? 0 : r + 1;
      b[0] = flag;
      b[1] = id & 0xff;
      b.writeUInt32LE(seqs[i]!, 2);
      b.writeDoubleLE(now(), 6);
      c.publish(topics[seqs[i]! % topics.length]!, b);
      seqs[i]!++;
    }
    issued += due;
    if (flag) sent += due;
    else warmSent += due;
    await sleep(1);
  }
  await c.flush();
  return { sent, warmSent, start, end: now(), disconnects: c.disconnects, skipped };
}

async function setupSub(job: WorkerJob, clients: BenchClient[], handlers: Partial<Record<Cmd['cmd'], (c: Cmd) => Promise<object | void>>>): Promise<void> {
  const stats = clients.map(() => ({ received: 0, probes: 0, first: 0, last: 0, outOfOrder: 0, lastSeq: new Float64Array(256).fill(-1), hist: job.latency ? newHistogram() : undefined }));
  // Reads the float64 publish time at payload bytes 6..13 without a view per event.
  const stamp = new Float64Array(1);
  const stampBytes = new Uint8Array(stamp.buffer);
  let probed = 0;
  let lastAny = now();
  const slowMs = (job.slowUs ?? 0) / 1000;
  await Promise.all(
    clients.map((c, i) => {
      const s = stats[i]!;
      return c.subscribe(job.subTopic ?? job.topic, (d) => {
        const flag = d[0];
        if (slowMs > 0) {
          const until = now() + slowMs;
          while (now() < until);
        }
        if (flag === 2) {
          if (s.probes++ === 0 && ++probed === clients.length) send({ ev: 'probed' });
          return;
        }
        const seq = (d[2]! | (d[3]! << 8) | (d[4]! << 16) | (d[5]! << 24)) >>> 0;
        const p = d[1]!;
        if (seq <= s.lastSeq[p]!) s.outOfOrder++;
        s.lastSeq[p] = seq;
        if (flag !== 1) return;
        const t = now();
        if (s.hist) {
          for (let k = 0; k < 8; k++) stampBytes[k] = d[6 + k]!;
          s.hist.recordValue(Math.max(1, Math.round((t - stamp[0]!) * 1000)));
        }
        if (s.received++ === 0) s.first = t;
        s.last = t;
        lastAny = t;
      });
    }),
  );
  handlers.collect = async (m) => {
    const { expected, idleMs, maxMs } = m as Extract<Cmd, { cmd: 'collect' }>;
    const deadline = now() + maxMs;
    lastAny = Math.max(lastAny, now());
    while (stats.some((s) => s.received < expected) && now() < deadline && now() - lastAny < idleMs) await sleep(20);
    const subs: SubResult[] = stats.map((s, i) => ({ received: s.received, first: s.first, last: s.last, outOfOrder: s.outOfOrder, disconnects: clients[i]!.disconnects, ...(slowMs > 0 ? { slow: true } : {}), ...(s.hist ? { latency: summarize(s.hist) } : {}) }));
    return { ev: 'result', subs };
  };
}

function setupReq(job: WorkerJob, c: BenchClient, handlers: Partial<Record<Cmd['cmd'], (c: Cmd) => Promise<object | void>>>): void {
  handlers.start = async () => {
    const data = Buffer.alloc(job.payload, 0x61);
    const h = newHistogram();
    const t0 = now();
    const warmEnd = t0 + job.warmupMs;
    const end = warmEnd + job.durationMs;
    let timeouts = 0;
    let t = t0;
    while (t < end) {
      try {
        await c.request(job.topic, data, 2000);
        const t2 = now();
        if (t >= warmEnd) h.recordValue(Math.max(1, Math.round((t2 - t) * 1000)));
        t = t2;
      } catch {
        if (t >= warmEnd) timeouts++;
        t = now();
      }
    }
    return { ev: 'result', latency: summarize(h), histogram: encodeHistogram(h), timeouts, seconds: job.durationMs / 1000 };
  };
}

process.once('message', (job: WorkerJob) => {
  // Every client process, of every target, sets glibc's heap top pad as a node's process does (an app
  // may, the SDK never does it for one): without it a client's per-read buffers page-fault in some
  // rounds and not in others, and the 4 KiB rows moved ±40 % between rounds of the same servers
  // (bench/README "Major GCs on a small heap, and the clients' page faults"). Equal for meshbus, NATS, Redis and the relay's clients.
  tuneAllocator();
  main(job).catch((e: unknown) => {
    send({ ev: 'error', message: String((e as Error)?.stack ?? e) });
    setTimeout(() => process.exit(1), 100);
  });
});

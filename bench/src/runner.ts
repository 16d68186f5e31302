/**
 * Runs scenarios against targets: starts the servers (separate processes),
 * forks the client processes (worker.js), measures, stops everything.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchFor, split, type Scenario } from './scenarios.js';
import { getTarget, type Servers, type TargetName } from './targets/index.js';
import type { LatencySummary } from './histogram.js';
import type { PubResult, SubResult, WorkerJob } from './worker.js';
import { cpuOfAll, rssOf, sleep } from './proc.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled worker, whether this module runs from dist/ or (under vitest) from src/. */
export const WORKER = existsSync(join(here, 'worker.js')) ? join(here, 'worker.js') : join(here, '..', 'dist', 'worker.js');

export interface RunResult {
  scenario: string;
  target: TargetName;
  payload: number;
  nodes: number;
  /** Set when the run did not happen or failed. */
  skipped?: string;
  error?: string;
  servers?: string;
  // stream
  sent?: number;
  /** Messages per second the publishers got out (measured window). */
  pubRate?: number;
  /** Events/s received, summed over subscribers. */
  rate?: number;
  /** Mean events/s per subscriber. */
  perSubRate?: number;
  received?: number;
  /** Sum over subscribers of (sent − received). */
  lost?: number;
  /** lost / (sent × subscribers). */
  lostRatio?: number;
  maxLostPerSub?: number;
  outOfOrder?: number;
  disconnects?: number;
  /** Scenarios with a slow consumer: lost and disconnects of the slow subscriber, and of the others. */
  slowLost?: number;
  slowDisconnects?: number;
  slowReceived?: number;
  normalLost?: number;
  normalDisconnects?: number;
  /** CPU seconds the server process(es) used in the measured window (Linux /proc; absent for a server not started here). */
  serverCpu?: number;
  /** Server CPU nanoseconds per event delivered to a subscriber: the node's own cost, whatever limits the clients. */
  serverNsPerMsg?: number;
  // latency (reqrep: round trip; load-p99: delivery latency per event at the paced rate)
  latency?: LatencySummary;
  /**
   * Request/reply: this run's histogram (HdrHistogram compressed base64), for
   * run.ts to pool the rounds; left out of the report.
   */
  histogram?: string;
  /** Request/reply: how many rounds `latency` is of (their samples together). */
  pooledRounds?: number;
  /** Paced scenarios: the offered rate (events/s) and the max rate it is a fraction of. */
  pacedRate?: number;
  maxRate?: number;
  /** Paced scenarios: events the publisher skipped because its timer fell behind. */
  pacedSkipped?: number;
  // growth
  /** Non-matching subscriptions added on the node before the run, and the node's RSS before and after adding them. */
  fillSubs?: number;
  rssBeforeFill?: number;
  rssAfterFill?: number;
  /** (rssAfterFill − rssBeforeFill) / fillSubs, bytes. */
  memPerSub?: number;
  /** Churn scenarios: subscribe + unsubscribe pairs another client made on the node while the publisher ran (warm-up included). */
  churnPairs?: number;
  timeouts?: number;
  // idle
  connections?: number;
  rssBefore?: number;
  rssAfter?: number;
  rssPer10k?: number;
  /** With `--rounds N`: the main figure of every round (this result is the median one; see run.ts medianRound). */
  roundFigures?: number[];
  /**
   * A WebSocket scenario (meshbus): its TCP twin's median round, run in the
   * same rounds, back to back with it; the WS/TCP ratio's denominator.
   */
  tcpTwin?: RunResult;
}

export interface RunSettings {
  durationMs: number;
  warmupMs: number;
  log: (line: string) => void;
  /** Paced scenarios: the target's max 1 → 1 rate at this payload measured earlier in the run, if any. */
  maxRate?: (target: TargetName, payload: number) => number | undefined;
  /** The targets this run measures (paceOf 'slowest': the lowest max rate among those the scenario runs). */
  targets?: readonly TargetName[];
}

interface Msg {
  ev: string;
  [k: string]: unknown;
}

let profiled = 0;

/** One forked client process with a queue of the events it sent. */
class Worker {
  private readonly child: ChildProcess;
  private readonly queue: Msg[] = [];
  private waiter: ((m: Msg) => void) | undefined;
  private failure: Error | undefined;

  constructor(job: WorkerJob) {
    // BENCH_WORKER_PROFILE=DIR: every client process writes a V8 CPU profile (<role>-*.cpuprofile) to DIR.
    const prof = process.env.BENCH_WORKER_PROFILE;
    const execArgv = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${job.target}-${job.role}-${++profiled}.cpuprofile`] : [];
    this.child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
    this.child.on('message', (m: Msg) => {
      if (m.ev === 'error') this.fail(new Error(`${job.target} ${job.role} worker: ${String(m.message)}`));
      else if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(m);
      } else this.queue.push(m);
    });
    this.child.on('exit', (code) => {
      if (code !== 0) this.fail(new Error(`${job.target} ${job.role} worker exited with code ${code}`));
    });
    this.child.send(job);
  }

  private rejecter: ((e: Error) => void) | undefined;
  private fail(e: Error): void {
    this.failure ??= e;
    this.rejecter?.(e);
  }

  send(cmd: object): void {
    if (this.child.connected) this.child.send(cmd);
  }

  /** The next event named `ev` (others are discarded), within `ms`. */
  async next(ev: string, ms: number): Promise<Msg> {
    for (;;) {
      if (this.failure) throw this.failure;
      const q = this.queue.shift();
      const m =
        q ??
        (await new Promise<Msg>((resolve, reject) => {
          const t = setTimeout(() => {
            this.waiter = undefined;
            reject(new Error(`timed out after ${ms} ms waiting for "${ev}"`));
          }, ms);
          this.rejecter = (e) => {
            clearTimeout(t);
            reject(e);
          };
          this.waiter = (m) => {
            clearTimeout(t);
            resolve(m);
          };
        }));
      if (m.ev === ev) return m;
    }
  }

  /** True when `ev` arrived (consumes it), without waiting. */
  poll(ev: string): boolean {
    const i = this.queue.findIndex((m) => m.ev === ev);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.send({ cmd: 'stop' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(t);
  }
}

function job(target: TargetName, role: WorkerJob['role'], urls: string[], conns: number, payload: number, s: RunSettings, pubBase = 0, fanout = 1): WorkerJob {
  return { target, role, urls, conns, topic: 'bench.events.x', payload, batch: batchFor(payload, fanout), pubBase, warmupMs: s.warmupMs, durationMs: s.durationMs };
}

/** Runs one scenario at one payload size against one target (servers started and stopped here). */
export async function runOne(targetName: TargetName, sc: Scenario, payload: number, settings: RunSettings): Promise<RunResult> {
  const s = sc.minDurationMs !== undefined && sc.minDurationMs > settings.durationMs ? { ...settings, durationMs: sc.minDurationMs } : settings;
  const base: RunResult = { scenario: sc.id, target: targetName, payload, nodes: sc.nodes };
  const target = getTarget(targetName);
  if (sc.only && !sc.only.includes(targetName)) return { ...base, skipped: `no ${sc.ws ? 'WebSocket ' : ''}variant for ${targetName} in this harness` };
  let maxRate: number | undefined;
  if (sc.pace) {
    // 50 % of what? The target's own 1 → 1 rate at this size (or the slowest target's: paceOf): from this run, else measured now.
    const whose = sc.paceOf === 'slowest' ? (s.targets ?? [targetName]).filter((t) => !sc.only || sc.only.includes(t)) : [targetName];
    for (const t of whose) {
      let r = s.maxRate?.(t, payload);
      if (r === undefined) {
        const cal = await runOne(t, { ...sc, id: '1to1', pace: undefined, paceOf: undefined }, payload, s);
        if (!cal.rate) return { ...base, error: `calibration 1to1 of ${t} failed: ${cal.error ?? cal.skipped ?? 'rate 0'}` };
        r = cal.rate;
      }
      maxRate = Math.min(maxRate ?? Infinity, r);
    }
  }
  if (sc.nodes > 1) {
    const ok = await target.clusterSupport();
    if (ok !== true) return { ...base, skipped: ok };
  }
  let servers: Servers;
  try {
    servers = await target.start(sc.nodes);
  } catch (e) {
    return { ...base, error: (e as Error).message };
  }
  const workers: Worker[] = [];
  try {
    const r = { ...base, servers: servers.note };
    if (sc.kind === 'stream') return { ...r, ...(await stream(targetName, sc, payload, s, servers, workers, maxRate)) };
    if (sc.kind === 'latency') return { ...r, ...(await latency(targetName, payload, s, servers, workers)) };
    return { ...r, ...(await idle(targetName, sc, s, servers, workers)) };
  } catch (e) {
    return { ...base, error: (e as Error).message };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
    await servers.stop();
  }
}

/** Adds `sc.fill` non-matching subscriptions on the first node; the node's RSS before and after. */
async function fill(t: TargetName, sc: Scenario, payload: number, s: RunSettings, servers: Servers, workers: Worker[]): Promise<Partial<RunResult>> {
  const n = sc.fill ?? 0;
  if (n === 0) return {};
  // meshbus allows 10,000 subscriptions per connection by default: 5,000 per connection, for every target alike.
  const w = new Worker({ ...job(t, 'fill', [servers.urls[0]!], Math.ceil(n / 5000), payload, s), fill: n });
  workers.push(w);
  await w.next('ready', 60_000);
  await sleep(500);
  const before = rssOf(servers.pids[0]);
  w.send({ cmd: 'fill' });
  await w.next('filled', 300_000);
  await sleep(1000);
  const after = rssOf(servers.pids[0]);
  const mem = before !== undefined && after !== undefined ? { rssBeforeFill: before, rssAfterFill: after, memPerSub: Math.round((after - before) / n) } : {};
  return { fillSubs: n, ...mem };
}

async function stream(t: TargetName, sc: Scenario, payload: number, s: RunSettings, servers: Servers, workers: Worker[], maxRate?: number): Promise<Partial<RunResult>> {
  const urls = sc.ws ? servers.wsUrls : servers.urls;
  if (!urls || urls.length === 0) throw new Error('no WebSocket URL for this server');
  const filled = await fill(t, sc, payload, s, servers, workers);
  const churner = sc.churn ? new Worker({ ...job(t, 'churn', [servers.urls[0]!], 1, payload, s), churnRate: sc.churn }) : undefined;
  if (churner) {
    workers.push(churner);
    await churner.next('ready', 30_000);
  }
  const pubUrl = [urls[0]!];
  // Subscriber processes on the nodes after the publisher's, round robin (one node: the same node).
  const subUrl = (i: number): string[] => [urls.length === 1 ? urls[0]! : urls[1 + (i % (urls.length - 1))]!];
  const shape = { topics: sc.topics, subTopic: sc.topics ? 'bench.events.*' : undefined, latency: sc.pace ? true : undefined };
  const subs = split(sc.subs, sc.subProcs).map((n, i) => new Worker({ ...job(t, 'sub', subUrl(i), n, payload, s), ...shape, ...(i === 0 && sc.slowUs ? { slowUs: sc.slowUs } : {}) }));
  let id = 0;
  const paceRate = sc.pace && maxRate ? Math.max(1, Math.round((sc.pace * maxRate) / sc.pubs)) : undefined;
  const pubs = split(sc.pubs, sc.pubProcs).map((n) => {
    const w = new Worker({ ...job(t, 'pub', pubUrl, n, payload, s, id, sc.subs), ...shape, paceRate });
    id += n;
    return w;
  });
  workers.push(...subs, ...pubs);
  const setupMs = 30_000 + sc.subs * 50;
  await Promise.all([...subs, ...pubs].map((w) => w.next('ready', setupMs)));
  // Interest may take a moment to reach the publisher's node: probe until every subscriber has heard one.
  const probed = new Set<Worker>();
  const deadline = Date.now() + 15_000;
  while (probed.size < subs.length) {
    if (Date.now() > deadline) throw new Error(`subscribers never received a probe (${probed.size}/${subs.length} processes)`);
    for (const p of pubs) p.send({ cmd: 'probe' });
    await sleep(100);
    for (const w of subs) if (!probed.has(w) && w.poll('probed')) probed.add(w);
  }
  await sleep(100);
  churner?.send({ cmd: 'churn' });
  await churner?.next('churning', 10_000);
  for (const p of pubs) p.send({ cmd: 'start' });
  let cpu0: number | undefined;
  const cpuTimer = setTimeout(() => (cpu0 = cpuOfAll(servers.pids)), s.warmupMs);
  const runMs = s.warmupMs + s.durationMs + 60_000;
  const pr = (await Promise.all(pubs.map((p) => p.next('result', runMs)))).flatMap((m) => m.pubs as PubResult[]);
  clearTimeout(cpuTimer);
  const cpu1 = cpuOfAll(servers.pids);
  const serverCpu = cpu0 !== undefined && cpu1 !== undefined ? Math.round((cpu1 - cpu0) * 100) / 100 : undefined;
  churner?.send({ cmd: 'churn' });
  const churnPairs = churner ? ((await churner.next('churning', 10_000)).pairs as number) : undefined;
  const sent = pr.reduce((a, p) => a + p.sent, 0);
  for (const w of subs) w.send({ cmd: 'collect', expected: sent, idleMs: 1500, maxMs: 30_000 });
  const sr = (await Promise.all(subs.map((w) => w.next('result', 40_000)))).flatMap((m) => m.subs as SubResult[]);
  const received = sr.reduce((a, x) => a + x.received, 0);
  const got = sr.filter((x) => x.received > 0);
  const first = Math.min(...got.map((x) => x.first));
  const last = Math.max(...got.map((x) => x.last));
  const lostEach = sr.map((x) => Math.max(0, sent - x.received));
  const lost = lostEach.reduce((a, b) => a + b, 0);
  const slow = sc.slowUs
    ? {
        slowLost: sr.reduce((a, x, i) => a + (x.slow ? lostEach[i]! : 0), 0),
        slowReceived: sr.reduce((a, x) => a + (x.slow ? x.received : 0), 0),
        slowDisconnects: sr.reduce((a, x) => a + (x.slow ? x.disconnects : 0), 0),
        normalLost: sr.reduce((a, x, i) => a + (x.slow ? 0 : lostEach[i]!), 0),
        normalDisconnects: sr.reduce((a, x) => a + (x.slow ? 0 : x.disconnects), 0),
      }
    : {};
  const pubWindow = Math.max(...pr.map((p) => p.end)) - Math.min(...pr.map((p) => p.start));
  return {
    sent,
    pubRate: Math.round(sent / (pubWindow / 1000)),
    received,
    rate: got.length && last > first ? Math.round(received / ((last - first) / 1000)) : 0,
    perSubRate: Math.round(got.reduce((a, x) => a + (x.last > x.first ? x.received / ((x.last - x.first) / 1000) : 0), 0) / Math.max(1, sr.length)),
    lost,
    lostRatio: sent > 0 ? lost / (sent * sr.length) : 0,
    maxLostPerSub: Math.max(...lostEach),
    outOfOrder: sr.reduce((a, x) => a + x.outOfOrder, 0),
    disconnects: sr.reduce((a, x) => a + x.disconnects, 0) + pr.reduce((a, p) => a + p.disconnects, 0),
    serverCpu,
    serverNsPerMsg: serverCpu !== undefined && received > 0 ? Math.round((serverCpu * 1e9) / received) : undefined,
    ...slow,
    ...filled,
    ...(churnPairs !== undefined ? { churnPairs } : {}),
    ...(paceRate ? { pacedRate: paceRate * sc.pubs, maxRate, pacedSkipped: pr.reduce((a, p) => a + (p.skipped ?? 0), 0), latency: sr.find((x) => x.latency)?.latency } : {}),
  };
}

async function latency(t: TargetName, payload: number, s: RunSettings, servers: Servers, workers: Worker[]): Promise<Partial<RunResult>> {
  const rep = new Worker(job(t, 'rep', [servers.urls[0]!], 1, payload, s));
  workers.push(rep);
  await rep.next('ready', 30_000);
  const req = new Worker(job(t, 'req', [servers.urls[0]!], 1, payload, s));
  workers.push(req);
  await req.next('ready', 30_000);
  req.send({ cmd: 'start' });
  const m = await req.next('result', s.warmupMs + s.durationMs + 60_000);
  return { latency: m.latency as LatencySummary, histogram: m.histogram as string, timeouts: m.timeouts as number, rate: Math.round((m.latency as LatencySummary).count / (s.durationMs / 1000)) };
}

async function idle(t: TargetName, sc: Scenario, s: RunSettings, servers: Servers, workers: Worker[]): Promise<Partial<RunResult>> {
  const pid = servers.pids[0];
  if (pid === undefined) return { skipped: 'server not started by the harness: its RSS is unknown' };
  await sleep(500);
  const rssBefore = rssOf(pid)!;
  for (const n of split(sc.pubs, sc.pubProcs)) workers.push(new Worker(job(t, 'idle', [servers.urls[0]!], n, 16, s)));
  await Promise.all(workers.map((w) => w.next('ready', 120_000)));
  await sleep(1000);
  const rssAfter = rssOf(pid)!;
  return { connections: sc.pubs, rssBefore, rssAfter, rssPer10k: Math.round(((rssAfter - rssBefore) / sc.pubs) * 10_000) };
}

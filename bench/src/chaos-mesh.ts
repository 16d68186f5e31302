/**
 * The chaos engine behind bench/src/chaos.ts and bench/test/chaos.test.ts.
 *
 * Starts a mesh of real `meshbus start` processes (node 0 is the seed; the
 * last node reaches node 0 only through a ChaosProxy and advertises its
 * cluster port through a second one, so cutting the proxies cuts the link
 * between those two nodes both ways), runs publishers and subscribers
 * through @meshbus/sdk with the server list of every node, and injects
 * faults in turn: SIGKILL + restart of a node, proxy drop, proxy stall.
 *
 * Measured: unexpected exits (any exit we did not cause, and the exit codes
 * of the final SIGTERM), RSS of every node (GET /metrics, /proc as a
 * fallback) sampled each second, per-publisher order and duplicates at each
 * subscriber, events lost (at-most-once: gaps allowed, counted), and for each
 * fault the time until every subscriber again receives events from every
 * publisher (from the fault, and from its healing).
 *
 * With a Redis (chaos-durable.ts; `redis` option, default: 127.0.0.1:6379 or
 * a redis-server of our own) the nodes also run durable topics and a durable
 * queue group, checked for lost acknowledged events and duplicates. Without
 * one the report says "durable checks skipped: no Redis" (an error instead
 * when `requireRedis`, default MESHBUS_REQUIRE_REDIS=1).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, type Client, type Msg } from '@meshbus/sdk';
import { DURABLE_SPEC, DurableChecks, findRedis, skippedDurable, type ChaosRedis } from './chaos-durable.js';
import { ChaosProxy } from './chaos-proxy.js';
import { httpGet, metric, type ChaosReport, type FaultKind, type FaultRecord } from './chaos-report.js';
import { rssOf, sleep } from './proc.js';

export { metric, summarize, type ChaosReport, type FaultKind, type FaultRecord } from './chaos-report.js';
import { freePort } from '@meshbus/core';

/** The `meshbus` command of @meshbus/cli, run as a user runs it. */
const BIN = fileURLToPath(import.meta.resolve('@meshbus/cli/meshbus.js'));

export interface ChaosOptions {
  nodes?: number;
  durationMs?: number;
  /** Time between the start of two faults. */
  faultEveryMs?: number;
  /** How long a fault lasts (node down, link dropped or stalled). */
  faultMs?: number;
  publishers?: number;
  subscribers?: number;
  /** Events per second per publisher. */
  rate?: number;
  /** Which faults to cycle through. */
  faults?: FaultKind[];
  /** Redis for the durable checks: a redis:// URL, 'auto' (default) or 'off'. */
  redis?: string;
  /** Fail instead of skipping the durable checks without Redis. Default: MESHBUS_REQUIRE_REDIS=1. */
  requireRedis?: boolean;
  /** Durable publishers (acked publishes on dur.p<i>). Default 2. */
  durablePublishers?: number;
  /** Acked publishes per second per durable publisher. Default 20. */
  durableRate?: number;
  /** Acked jobs per second to the durable queue group. Default 20. */
  jobRate?: number;
  /** How long to wait at the end for acked durable events and jobs still missing. Default 10 s. */
  durableDrainMs?: number;
  log?: (line: string) => void;
}

interface Proc {
  index: number;
  child: ChildProcess;
  port: number;
  clusterPort: number;
  httpPort: number;
  log: string[];
  expectedExit: boolean;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export { freePort };


export async function runChaos(opts: ChaosOptions = {}): Promise<ChaosReport> {
  const n = Math.max(3, Math.min(5, opts.nodes ?? 3));
  const durationMs = opts.durationMs ?? 60_000;
  const faultEveryMs = opts.faultEveryMs ?? 8_000;
  const faultMs = opts.faultMs ?? 3_000;
  const nPub = opts.publishers ?? 3;
  const nSub = opts.subscribers ?? 3;
  const rate = opts.rate ?? 100;
  const kinds = opts.faults ?? ['kill', 'drop', 'stall'];
  const log = opts.log ?? ((): void => {});
  const requireRedis = opts.requireRedis ?? process.env['MESHBUS_REQUIRE_REDIS'] === '1';
  const found = await findRedis(opts.redis ?? process.env['CHAOS_REDIS']);
  if (typeof found === 'string' && requireRedis && opts.redis !== 'off') throw new Error(`MESHBUS_REQUIRE_REDIS=1 but ${found}`);
  const redis: ChaosRedis | undefined = typeof found === 'string' ? undefined : found;
  if (typeof found === 'string') log(`durable checks skipped: ${found}`);
  else log(`durable checks on: Redis ${redis!.url}, key prefix ${redis!.prefix}`);
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(1)}s`;

  // ---- ports and proxies ----
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ port: await freePort(), cluster: await freePort(), http: await freePort() })));
  const last = n - 1;
  // Node 0 and the last node advertise their cluster ports through these
  // proxies (so gossip hands out the proxy addresses) and the last node's seed
  // is node 0's proxy: every link between the two crosses a proxy, whoever
  // dials. Faults hit only connections dialed by the other one of the pair
  // (marker: its name in the peer HELLO), so links to other nodes stay up.
  const toSeed = await new ChaosProxy('127.0.0.1', ports[0]!.cluster, `chaos-${last}`).listen();
  const toLast = await new ChaosProxy('127.0.0.1', ports[last]!.cluster, 'chaos-0').listen();
  const proxies = [toSeed, toLast];

  const procs: Array<Proc | undefined> = new Array(n);
  const unexpectedExits: string[] = [];
  const peakRss = new Array<number>(n).fill(0);

  function argv(i: number): string[] {
    const p = ports[i]!;
    const a = [BIN, 'start', '--name', `chaos-${i}`, '--port', String(p.port), '--cluster-port', String(p.cluster), '--http-port', String(p.http), '--ws-port', 'off', '--log-level', process.env['CHAOS_LOG_LEVEL'] ?? 'warn'];
    if (i === last) a.push('--seeds', `127.0.0.1:${toSeed.port}`, '--advertise', `127.0.0.1:${toLast.port}`);
    else if (i === 0) a.push('--advertise', `127.0.0.1:${toSeed.port}`);
    else a.push('--seeds', `127.0.0.1:${ports[0]!.cluster}`);
    if (redis) a.push('--redis', redis.url, '--redis-prefix', redis.prefix, '--durable', DURABLE_SPEC);
    return a;
  }

  async function start(i: number): Promise<Proc> {
    const child = spawn(process.execPath, argv(i), { stdio: ['ignore', 'pipe', 'pipe'] });
    const p: Proc = {
      index: i,
      child,
      port: ports[i]!.port,
      clusterPort: ports[i]!.cluster,
      httpPort: ports[i]!.http,
      log: [],
      expectedExit: false,
      exit: new Promise((r) => child.once('exit', (code, signal) => r({ code, signal }))),
    };
    const keep = (d: Buffer): void => {
      p.log.push(d.toString());
      if (p.log.length > 200 && !process.env['CHAOS_DUMP']) p.log.splice(0, 100);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    void p.exit.then(({ code, signal }) => {
      if (!p.expectedExit) {
        const line = `node ${i} (pid ${child.pid}) exited unexpectedly: code ${code} signal ${signal}; last log: ${p.log.join('').slice(-1500)}`;
        unexpectedExits.push(line);
        log(`${stamp()} !! ${line}`);
      }
    });
    procs[i] = p;
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (p.child.exitCode !== null) throw new Error(`node ${i} exited at start: ${p.log.join('')}`);
      try {
        if ((await httpGet(p.httpPort, '/healthz', 500)).status === 200) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`node ${i} not healthy after 15 s: ${p.log.join('')}`);
      await sleep(50);
    }
    return p;
  }

  async function peersUp(i: number): Promise<number> {
    const p = procs[i];
    if (!p) return 0;
    try {
      return metric((await httpGet(p.httpPort, '/metrics')).body, 'meshbus_peers', 'state="up"') ?? 0;
    } catch {
      return 0;
    }
  }

  async function sampleRss(): Promise<void> {
    await Promise.all(
      procs.map(async (p, i) => {
        if (!p || p.child.exitCode !== null) return;
        let rss: number | undefined;
        try {
          rss = metric((await httpGet(p.httpPort, '/metrics', 1000)).body, 'meshbus_memory_bytes', 'kind="rss"');
        } catch {
          /* fall back */
        }
        rss ??= rssOf(p.child.pid);
        if (rss) peakRss[i] = Math.max(peakRss[i]!, rss);
      }),
    );
  }

  const clients: Client[] = [];
  let durable: DurableChecks | undefined;
  let pubTimer: ReturnType<typeof setInterval> | undefined;
  let rssTimer: ReturnType<typeof setInterval> | undefined;
  const report: Partial<ChaosReport> = {};
  try {
    for (let i = 0; i < n; i++) await start(i);
    const meshDeadline = Date.now() + 20_000;
    for (;;) {
      const ups = await Promise.all(procs.map((_p, i) => peersUp(i)));
      if (ups.every((u) => u === n - 1)) break;
      if (Date.now() > meshDeadline) throw new Error(`mesh not formed: peers up ${ups.join(',')}`);
      await sleep(100);
    }
    log(`${stamp()} mesh of ${n} nodes up (node ${last} linked to node 0 through proxies ${toSeed.port}/${toLast.port})`);

    // ---- clients ----
    const urls = ports.map((p) => `127.0.0.1:${p.port}`);
    const rotated = (k: number): string[] => urls.map((_u, i) => urls[(i + k) % n]!);
    const clientOpts = { reconnectBackoff: { base: 50, max: 500 }, connectTimeout: 2000, pingInterval: 1000, maxPingOut: 2 };

    interface SubState {
      seen: Uint8Array[];
      last: number[];
      /** Time the last event published at or after `t` arrived, per publisher. */
      lastPubTime: number[];
      received: number;
      duplicates: number;
      reordered: number;
    }
    const subs: SubState[] = [];
    for (let s = 0; s < nSub; s++) {
      const st: SubState = {
        seen: Array.from({ length: nPub }, () => new Uint8Array(1024)),
        last: new Array(nPub).fill(-1),
        lastPubTime: new Array(nPub).fill(0),
        received: 0,
        duplicates: 0,
        reordered: 0,
      };
      subs.push(st);
      const c = await connect(rotated(s + 1), { name: `chaos-sub-${s}`, ...clientOpts });
      clients.push(c);
      c.subscribe('chaos.>', {
        callback: (m: Msg) => {
          const [p, seq, t] = Buffer.from(m.data).toString().split(',').map(Number) as [number, number, number];
          st.received++;
          let seen = st.seen[p]!;
          if (seq >= seen.length * 8) {
            const grown = new Uint8Array(Math.max(seen.length * 2, (seq >> 3) + 1024));
            grown.set(seen);
            st.seen[p] = seen = grown;
          }
          const bit = 1 << (seq & 7);
          if (seen[seq >> 3]! & bit) {
            st.duplicates++;
            return;
          }
          seen[seq >> 3]! |= bit;
          if (seq < st.last[p]!) st.reordered++;
          else st.last[p] = seq;
          st.lastPubTime[p] = Math.max(st.lastPubTime[p]!, t);
        },
      });
      await c.flush();
    }
    const pubs: Client[] = [];
    const seqs = new Array<number>(nPub).fill(0);
    for (let p = 0; p < nPub; p++) {
      const c = await connect(rotated(p), { name: `chaos-pub-${p}`, ...clientOpts });
      c.on('status', (st) => {
        if (st.type === 'disconnected' || st.type === 'connected') log(`${stamp()}   publisher ${p} ${st.type}${st.type === 'connected' ? ` to ${st.server}` : ''}${'error' in st && st.error ? ` (${st.error.code})` : ''}`);
      });
      clients.push(c);
      pubs.push(c);
    }
    if (redis) {
      durable = new DurableChecks({
        redis,
        urls,
        clientOptions: clientOpts,
        publishers: opts.durablePublishers ?? 2,
        rate: opts.durableRate ?? 20,
        jobRate: opts.jobRate ?? 20,
        log: (l) => log(`${stamp()}${l}`),
      });
      await durable.start();
    }
    await sleep(500); // interest propagates
    const perTick = Math.max(1, Math.round(rate / 100));
    const tickMs = Math.max(1, Math.round((1000 * perTick) / rate));
    pubTimer = setInterval(() => {
      const now = Date.now();
      durable?.tick(tickMs);
      for (let p = 0; p < nPub; p++) {
        for (let k = 0; k < perTick; k++) {
          try {
            pubs[p]!.publish(`chaos.p${p}`, Buffer.from(`${p},${seqs[p]},${now}`));
            seqs[p]!++;
          } catch {
            /* outbox full or closed: not sent, not counted */
          }
        }
      }
    }, tickMs);
    rssTimer = setInterval(() => void sampleRss(), 1000);

    /** Waits until every subscriber got an event of every publisher published at or after `since`. */
    async function flowing(since: number, limitMs: number): Promise<number | null> {
      const deadline = Date.now() + limitMs;
      while (Date.now() < deadline) {
        if (subs.every((s) => s.lastPubTime.every((t) => t >= since))) return Date.now() - since;
        await sleep(20);
      }
      return null;
    }
    const initial = await flowing(Date.now(), 15_000);
    if (initial === null) throw new Error('events never started flowing to every subscriber');
    log(`${stamp()} traffic flowing: ${nPub} publishers x ${rate}/s, ${nSub} subscribers; proxy connections so far ${toSeed.accepted}+${toLast.accepted}`);

    // ---- faults ----
    const faults: FaultRecord[] = [];
    const end = t0 + durationMs;
    const totalReordered = (): number => subs.reduce((a, s) => a + s.reordered, 0);
    const reorderedBeforeFaults = totalReordered();
    let reorderedMark = reorderedBeforeFaults;
    const closeFault = (): void => {
      const f = faults[faults.length - 1];
      if (!f) return;
      const now = totalReordered();
      f.reordered = now - reorderedMark;
      reorderedMark = now;
    };
    let k = 0;
    while (Date.now() + faultMs + 2000 < end) {
      const kind = kinds[k % kinds.length]!;
      closeFault();
      const at = Date.now();
      reorderedMark = totalReordered();
      let target: string;
      const afterFault = flowing(at, faultEveryMs * 3 + 15_000);
      if (kind === 'kill') {
        const i = Math.floor(k / kinds.length) % n;
        target = `node ${i}`;
        const p = procs[i]!;
        p.expectedExit = true;
        p.child.kill('SIGKILL');
        await p.exit;
        log(`${stamp()} fault ${k + 1}: SIGKILL ${target}`);
        await sleep(faultMs);
        await start(i);
        log(`${stamp()}   ${target} restarted`);
      } else {
        target = `link node ${last} <-> node 0`;
        const hit = proxies.reduce((x, px) => x + px.connections().hit, 0);
        for (const px of proxies) px.setMode(kind);
        log(`${stamp()} fault ${k + 1}: proxy ${kind} (${target}; ${hit} proxied connection(s) of that pair)`);
        await sleep(faultMs);
        for (const px of proxies) px.setMode('pass');
        log(`${stamp()}   proxy back to pass`);
      }
      const healedAt = Date.now();
      const flowAfterHealMs = await flowing(healedAt, 20_000);
      const flowAfterFaultMs = await afterFault;
      faults.push({ kind, target, at: at - t0, flowAfterFaultMs, flowAfterHealMs, reordered: 0 });
      log(`${stamp()}   events flowing to all subscribers ${flowAfterHealMs ?? 'NEVER'} ms after healing (${flowAfterFaultMs ?? 'NEVER'} ms after the fault); proxy connections so far ${toSeed.accepted}+${toLast.accepted}`);
      k++;
      const wait = at + faultEveryMs - Date.now();
      if (wait > 0) await sleep(Math.min(wait, Math.max(0, end - Date.now())));
    }
    if (Date.now() < end) await sleep(end - Date.now());

    // ---- drain and count ----
    clearInterval(pubTimer);
    pubTimer = undefined;
    for (const c of pubs) await c.flush().catch(() => {});
    await sleep(2000);
    closeFault();
    const durableReport = durable ? await durable.finish(opts.durableDrainMs ?? 10_000) : skippedDurable(typeof found === 'string' ? found : 'not run');
    await sampleRss();
    const sent = seqs.reduce((a, b) => a + b, 0);
    let received = 0;
    let duplicates = 0;
    let reordered = 0;
    let distinct = 0;
    for (const s of subs) {
      received += s.received;
      duplicates += s.duplicates;
      reordered += s.reordered;
      for (const bits of s.seen) for (const b of bits) for (let x = b; x; x &= x - 1) distinct++;
    }
    const rssAfter = await Promise.all(
      procs.map(async (p) => {
        try {
          return metric((await httpGet(p!.httpPort, '/metrics')).body, 'meshbus_memory_bytes', 'kind="rss"') ?? 0;
        } catch {
          return rssOf(p?.child.pid) ?? 0;
        }
      }),
    );
    const ff = faults.map((f) => f.flowAfterFaultMs);
    const fh = faults.map((f) => f.flowAfterHealMs);
    const maxOf = (xs: Array<number | null>): number | null => (xs.some((x) => x === null) ? null : xs.length ? Math.max(...(xs as number[])) : 0);
    Object.assign(report, {
      startedAt: new Date(t0).toISOString(),
      nodes: n,
      durationMs: Date.now() - t0,
      publishers: nPub,
      subscribers: nSub,
      rate,
      faults,
      faultCounts: { kill: faults.filter((f) => f.kind === 'kill').length, drop: faults.filter((f) => f.kind === 'drop').length, stall: faults.filter((f) => f.kind === 'stall').length },
      sent,
      expected: sent * nSub,
      received,
      duplicates,
      reordered,
      reorderedBeforeFaults,
      lost: sent * nSub - distinct,
      peakRssMb: peakRss.map((b) => Math.round(b / 1048576)),
      rssAfterMb: rssAfter.map((b) => Math.round(b / 1048576)),
      maxFlowAfterFaultMs: maxOf(ff),
      maxFlowAfterHealMs: maxOf(fh),
      proxy: { accepted: toSeed.accepted + toLast.accepted, cut: toSeed.cut + toLast.cut },
      durable: durableReport,
    });
  } finally {
    if (pubTimer) clearInterval(pubTimer);
    if (rssTimer) clearInterval(rssTimer);
    await Promise.all([...clients, ...(durable?.clients ?? [])].map((c) => c.close().catch(() => {})));
    // Graceful stop: every node must exit 0 on SIGTERM.
    const codes = await Promise.all(
      procs.map(async (p) => {
        if (!p) return null;
        p.expectedExit = true;
        if (p.child.exitCode !== null || p.child.signalCode !== null) return p.child.exitCode;
        p.child.kill('SIGTERM');
        const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
        const { code } = await p.exit;
        clearTimeout(t);
        return code;
      }),
    );
    report.finalExitCodes = codes;
    if (process.env['CHAOS_DUMP']) for (const p of procs) if (p) (await import('node:fs')).writeFileSync(`${process.env['CHAOS_DUMP']}-${p.index}.log`, p.log.join(''));
    report.unexpectedExits = unexpectedExits;
    for (const px of proxies) await px.close();
    await redis?.release();
  }
  return report as ChaosReport;
}

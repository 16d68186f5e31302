/**
 * `npm run bench`: meshbus side by side with NATS and Redis pub/sub.
 *
 *   node bench/dist/run.js [--duration 3] [--warmup 1] [--full]
 *        [--targets meshbus,nats,redis] [--scenarios 1to1,fanout10,...] [--sizes 16,128,4096]
 *        [--out bench/results] [--no-write] [--external-meshbus host:port[,host:port][,ws://host:port]]
 *        [--rounds 3]
 *
 * Writes bench/results/<date>.json, latest.json and latest.svg. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { SIZES, scenarios } from './scenarios.js';
import { TARGETS, getTarget, useExternalMeshbus, type TargetName } from './targets/index.js';
import { runOne, type RunResult } from './runner.js';
import { pooledSummary } from './histogram.js';
import { machine, markdownTable, ratios, runInfo, svgChart, textTable, type Report } from './report.js';
import { growthSvg, growthTable, loadTable } from './report-growth.js';

const here = dirname(fileURLToPath(import.meta.url));
export const RESULTS_DIR = join(here, '..', 'results');

export interface BenchOptions {
  targets?: TargetName[];
  scenarios?: string[];
  sizes?: number[];
  durationMs?: number;
  warmupMs?: number;
  full?: boolean;
  /** Directory for JSON and SVG; undefined = do not write. */
  outDir?: string;
  externalMeshbus?: string[];
  /** Paced scenarios: this fraction of the max rate instead of the scenario's (0.5). */
  pace?: number;
  /**
   * Rounds per scenario and size (default 1). Each round runs every target
   * back to back, the order reversed every other round; each target's
   * figure is its median round (see medianRound).
   */
  rounds?: number;
  log?: (line: string) => void;
}

export async function runBench(o: BenchOptions = {}): Promise<Report> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const full = o.full ?? false;
  const results: RunResult[] = [];
  const settings = {
    durationMs: o.durationMs ?? 3000,
    warmupMs: o.warmupMs ?? 1000,
    log,
    maxRate: (t: TargetName, p: number) => results.find((r) => r.scenario === '1to1' && r.target === t && r.payload === p && !r.error)?.rate,
    targets: [] as TargetName[],
  };
  const sizes = o.sizes ?? [...SIZES];
  // Checked before anything starts: `--rounds x` (NaN) ran no round at all and wrote an empty report over latest.json.
  const rounds = o.rounds ?? 1;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a positive integer, got ${o.rounds}`);
  if (o.externalMeshbus) useExternalMeshbus(o.externalMeshbus);
  const all = scenarios(full).map((sc) => (sc.pace && o.pace ? { ...sc, pace: o.pace } : sc));
  const chosen = o.scenarios ? all.filter((s) => o.scenarios!.includes(s.id)) : all.filter((s) => full || !s.full);
  if (o.scenarios) for (const id of o.scenarios) if (!all.some((s) => s.id === id)) throw new Error(`unknown scenario ${id} (known: ${all.map((s) => s.id).join(', ')})`);

  const targets: Report['targets'] = [];
  for (const name of o.targets ?? TARGETS) {
    const why = await getTarget(name).unavailable();
    targets.push(why ? { name, status: 'skipped', reason: why } : { name, status: 'ok' });
    if (why) log(`skipping ${name}: ${why}`);
  }
  const ok = targets.filter((t) => t.status === 'ok').map((t) => t.name);
  settings.targets = ok;
  const m = machine();
  log(`machine: ${m.cores} cores, ${m.cpu}, Node ${m.node}; ${settings.durationMs} ms per run after ${settings.warmupMs} ms warm-up`);

  const started = runInfo();
  for (const sc of chosen) {
    for (const payload of sc.sized ? (sc.sizes ?? sizes) : [0]) {
      // Targets back to back for the same scenario and size: drift on a shared machine hits them alike.
      const runs = new Map<TargetName, RunResult[]>();
      // A WebSocket scenario's TCP twin (meshbus, the same scenario over TCP) runs beside it in each round: the
      // WS/TCP ratio then compares runs a few seconds apart, not minutes (the machine drifts between scenarios).
      const twin = sc.ws && ok.includes('meshbus') ? { ...sc, id: sc.id.replace(/-ws$/, ''), ws: false } : undefined;
      const twins: RunResult[] = [];
      for (let round = 0; round < rounds; round++) {
        const order: Array<TargetName | 'twin'> = [...ok, ...(twin ? ['twin' as const] : [])];
        for (const t of round % 2 === 0 ? order : order.reverse()) {
          if (t !== 'twin' && getTarget(t).supports?.(sc) === false) continue;
          const r = t === 'twin' ? await runOne('meshbus', twin!, payload, settings) : await runOne(t, sc, payload, settings);
          if (t === 'twin') twins.push(r);
          else runs.set(t, [...(runs.get(t) ?? []), r]);
          log(`${rounds > 1 ? `[round ${round + 1}/${rounds}] ` : ''}${t === 'twin' ? '(TCP twin) ' : ''}${summaryLine(r)}`);
        }
      }
      for (const t of ok) {
        const rs = runs.get(t);
        if (!rs) continue;
        const r = sc.kind === 'latency' ? poolLatency(rs) : medianRound(rs);
        results.push(t === 'meshbus' && twins.length > 0 ? { ...r, tcpTwin: medianRound(twins) } : r);
      }
    }
  }
  const notes = [
    'rate = events received per second at the subscribers (summed over subscribers), measured between the first and the last measured event each received.',
    'lost = Σ over subscribers of (events published in the measured window − events received); publishers pace on flush every batch (~256 KiB, 16..1000 events).',
    'WebSocket scenarios (fanout10-ws, --full fanout1000-ws): meshbus only, every client on the node\'s WebSocket gateway (`--ws-port`); the nats npm client and ioredis speak TCP.',
    'slow: publisher on node A, subscribers on node B (2-node cluster), one busy-waiting per event; slowLost / normalLost and disconnects per kind of subscriber.',
    'Redis: no cross-node scenario (no 2-node pub/sub mesh); request/reply emulated with PUBLISH + a reply channel.',
    'relay = the ceiling: a byte relay (bench/src/relay-server.ts) that copies the PUB bytes from the publisher socket to the subscriber socket, talked to by the same meshbus SDK clients; 1to1 only.',
    'load-p99: paced publisher at 50 % of the target\'s own 1to1 rate of this run; latency per event from the publish call to the subscriber callback. load-p99-same: every target paced at 50 % of the slowest target\'s 1to1 rate (the same load for all).',
    'subs-N: N − 1 non-matching subscriptions (literal and wildcard) on the node plus the subscriber; memPerSub = node RSS growth / those subscriptions. topics-N: the publisher cycles N topics, the subscriber takes bench.events.*.',
  ];
  const report: Report = {
    date: new Date().toISOString(),
    machine: m,
    settings: { durationMs: settings.durationMs, warmupMs: settings.warmupMs, full, sizes, rounds },
    run: { ...started, loadEnd: runInfo().loadStart },
    targets,
    notes,
    results,
    ratios: ratios(results),
  };
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    const json = JSON.stringify(report, null, 2) + '\n';
    writeFileSync(join(o.outDir, `${report.date.slice(0, 10)}.json`), json);
    writeFileSync(join(o.outDir, 'latest.json'), json);
    writeFileSync(join(o.outDir, 'latest.svg'), svgChart(report));
    writeFileSync(join(o.outDir, 'latest-growth.svg'), growthSvg(report));
    writeFileSync(join(o.outDir, 'latest.md'), reportMarkdown(report));
  }
  return report;
}

/**
 * Request/reply: the median round (medianRound) with its percentiles replaced
 * by those of every round's round trips together (`pooledRounds`). A p99.9
 * is decided by the few samples past it; the median of three rounds' p99.9
 * is one round's handful, and it moved by more between rounds than the two
 * brokers differ (bench/README "fifteenth pass"). Each round's own p99.9
 * stays in `roundFigures`. The histograms are not kept in the report.
 */
export function poolLatency(rs: RunResult[]): RunResult {
  const strip = ({ histogram: _h, ...r }: RunResult): RunResult => r;
  const m = strip(medianRound(rs));
  const hs = rs.filter((r) => !r.error && !r.skipped && r.histogram).map((r) => r.histogram!);
  if (hs.length < 2 || !m.latency) return m;
  const latency = pooledSummary(hs);
  const timeouts = rs.reduce((a, r) => a + (r.timeouts ?? 0), 0);
  return { ...m, latency, timeouts, pooledRounds: hs.length };
}

/**
 * The round whose main figure is the median of `rs` (for an even count, the
 * lower middle), with every round's figure in `roundFigures`: the rate for
 * throughput runs, p99.9 for request/reply, p99 for paced runs (`load-p99`:
 * their rate is the offered one, the same in every round, so a median by
 * rate would pick the round by noise and report any round's latency), RSS
 * per 10k for idle connections. A whole round is kept, not a median per
 * field, so the figures of one row (rate, CPU, lost) come from the same run.
 * Failed rounds count only when every round failed.
 */
export function medianRound(rs: RunResult[]): RunResult {
  const ok = rs.filter((r) => !r.error && !r.skipped);
  if (ok.length === 0) return rs[0]!;
  const figure = (r: RunResult): number => r.rssPer10k ?? (r.latency ? (r.pacedRate === undefined ? r.latency.p999 : r.latency.p99) : r.rate) ?? 0;
  const sorted = [...ok].sort((a, b) => figure(a) - figure(b));
  const m = sorted[Math.floor((sorted.length - 1) / 2)]!;
  return rs.length === 1 ? m : { ...m, roundFigures: ok.map(figure) };
}

/** Every table of a report, as Markdown (latest.md). */
export function reportMarkdown(report: Report): string {
  const r = report.run;
  const v = r?.versions;
  const head = `Run ${report.date} — load average ${r?.loadStart.join(' / ')} at the start, ${r?.loadEnd?.join(' / ')} at the end; meshbus ${v?.meshbus}, nats-server ${v?.natsServer ?? '—'}, redis-server ${v?.redisServer ?? '—'}, Node ${v?.node}; ${report.machine.cores} cores ${report.machine.cpu}; ${report.settings.durationMs / 1000} s per run after ${report.settings.warmupMs / 1000} s warm-up${(report.settings.rounds ?? 1) > 1 ? `; median of ${report.settings.rounds} alternating rounds per figure` : ''}.`;
  return [head, '', markdownTable(report.ratios), '', 'Delivery latency under load:', '', loadTable(report.results), '', 'Cost as the work grows:', '', growthTable(report.results), ''].join('\n');
}

function summaryLine(r: RunResult): string {
  const head = `${r.scenario} ${r.payload}B ${r.target}:`;
  if (r.skipped) return `${head} skipped (${r.skipped})`;
  if (r.error) return `${head} ERROR ${r.error}`;
  if (r.latency && r.pacedRate === undefined) return `${head} p50 ${r.latency.p50} µs, p99 ${r.latency.p99} µs, p99.9 ${r.latency.p999} µs (${r.latency.count} round trips, ${r.timeouts} timeouts)`;
  if (r.rssPer10k !== undefined) return `${head} RSS +${((r.rssAfter! - r.rssBefore!) / 2 ** 20).toFixed(1)} MiB for ${r.connections} connections = ${(r.rssPer10k / 2 ** 20).toFixed(1)} MiB per 10k`;
  const paced = r.pacedRate !== undefined ? ` [paced at ${r.pacedRate}/s of ${r.maxRate}; delivery latency p50 ${r.latency?.p50} µs, p99 ${r.latency?.p99} µs, p99.9 ${r.latency?.p999} µs; skipped ${r.pacedSkipped}]` : '';
  const filled = r.fillSubs !== undefined ? ` [+${r.fillSubs} non-matching subscriptions: ${r.memPerSub ?? '?'} B RSS each]` : '';
  const slow = r.slowLost !== undefined ? ` [slow sub: received ${r.slowReceived}, lost ${r.slowLost}, disconnects ${r.slowDisconnects}; normal subs: lost ${r.normalLost}, disconnects ${r.normalDisconnects}]` : '';
  return `${head} ${r.rate} msg/s received (published ${r.pubRate}/s), lost ${r.lost} of ${r.sent}×subs, out of order ${r.outOfOrder}, disconnects ${r.disconnects}, server CPU ${r.serverCpu ?? '?'} s = ${r.serverNsPerMsg ?? '?'} ns/msg${slow}${paced}${filled}`;
}

async function cli(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      full: { type: 'boolean' },
      targets: { type: 'string' },
      scenarios: { type: 'string' },
      sizes: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean' },
      'external-meshbus': { type: 'string' },
      pace: { type: 'string' },
      rounds: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(
      'node bench/dist/run.js [--duration S] [--warmup S] [--full] [--targets meshbus,nats,redis] [--scenarios ids] [--sizes 16,128,4096] [--out DIR] [--no-write] [--external-meshbus host:port[,ws://host:port]] [--pace 0.5] [--rounds N]\n',
    );
    return;
  }
  const list = (s: string | undefined): string[] | undefined => s?.split(',').map((x) => x.trim()).filter(Boolean);
  const report = await runBench({
    durationMs: values.duration ? Number(values.duration) * 1000 : undefined,
    warmupMs: values.warmup ? Number(values.warmup) * 1000 : undefined,
    full: values.full,
    targets: list(values.targets) as TargetName[] | undefined,
    scenarios: list(values.scenarios),
    sizes: list(values.sizes)?.map(Number),
    outDir: values['no-write'] ? undefined : resolve(values.out ?? RESULTS_DIR),
    externalMeshbus: list(values['external-meshbus']),
    pace: values.pace ? Number(values.pace) : undefined,
    rounds: values.rounds ? Number(values.rounds) : undefined,
  });
  process.stdout.write(textTable(report.results) + '\n\n' + reportMarkdown(report) + '\n');
  if (!values['no-write']) process.stdout.write(`\nwritten: ${resolve(values.out ?? RESULTS_DIR)}/{${report.date.slice(0, 10)}.json,latest.json,latest.svg,latest-growth.svg,latest.md}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  cli(process.argv.slice(2)).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`bench: ${(e as Error)?.stack ?? String(e)}\n`);
      process.exit(1);
    },
  );
}

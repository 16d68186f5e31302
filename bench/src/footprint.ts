/**
 * `npm run footprint`: the resource figures of issue #15 for this checkout
 * (and, with --against, another one in the same run, side by side):
 * start-up time and idle RSS of a plain `meshbus start`, node RSS per idle
 * client connection, browser ESM bundle size, `import('@meshbus/core')`
 * time, files over 500 lines and import cycles of <package>/src.
 *
 *   node bench/dist/footprint.js [--conns 10000] [--runs 10] [--rss-runs 3]
 *        [--against <checkout dir>] [--out <file.json>] [--no-write]
 *
 * Prints a table (stdout) and writes bench/results/footprint-<date>.json.
 * Progress goes to stderr. See bench/README.md "Footprint".
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machine } from './report.js';
import { rssOf, sleep, stopProcess } from './proc.js';
import { bundleSize, importOnce } from './footprint/load-figures.js';
import { AFTER_HTTP_MS, SETTLE_MS, idleConns, idleRssOnce, startupOnce } from './footprint/node-figures.js';
import { killAllNodes, type Checkout } from './footprint/node-process.js';
import { spread, textTable, pass, ratio, type Row, type Value } from './footprint/report.js';
import { scanSource } from './footprint/source-scan.js';

const here = dirname(fileURLToPath(import.meta.url));
const THIS_ROOT = resolve(here, '..', '..');
const MB = 2 ** 20;
const KB = 1024;
const ISSUE = 'issue #15';
const MAX_LINES = 500;


function int(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}, got ${v}`);
  return n;
}

const log = (s: string): void => {
  process.stderr.write(s + '\n');
};

function commitOf(root: string): string {
  try {
    return execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function checkout(root: string, fallback: string): Checkout & { commit: string } {
  const r = resolve(root);
  if (!existsSync(join(r, 'bin', 'meshbus.js'))) throw new Error(`${r}: no bin/meshbus.js (not a meshbus checkout)`);
  const commit = commitOf(r);
  return { root: r, commit, label: commit !== 'unknown' ? commit : fallback };
}

/** RSS of a Node process doing nothing, 3 s after spawn: the floor any node sits on. */
async function emptyNodeRss(): Promise<number> {
  const c = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)'], { stdio: 'ignore' });
  try {
    await sleep(SETTLE_MS);
    return rssOf(c.pid) ?? NaN;
  } finally {
    await stopProcess(c, 1000);
  }
}

type Rec = Record<string, Value | { error: string }>;
/**
 * Runs `n` rounds, each measuring every checkout once (interleaved, so drift
 * of a shared machine hits both alike). `once` gives one or more named
 * figures per run; the result holds, per figure, each checkout's median and
 * spread (or the first error: that checkout is not measured again).
 */
async function rounds<K extends string>(cos: Checkout[], n: number, what: string, once: (co: Checkout) => Promise<Record<K, number>>): Promise<Record<K, Rec>> {
  const runs = new Map<string, Array<Record<K, number>>>(cos.map((c) => [c.label, []]));
  const errors = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    for (const co of cos) {
      if (errors.has(co.label)) continue;
      try {
        runs.get(co.label)!.push(await once(co));
      } catch (e) {
        errors.set(co.label, (e as Error).message);
        log(`  ${what} (${co.label}) failed: ${(e as Error).message}`);
      }
    }
  }
  const keys = [...new Set([...runs.values()].flatMap((r) => r.flatMap((x) => Object.keys(x) as K[])))];
  const out = {} as Record<K, Rec>;
  for (const k of keys) {
    const rec: Rec = {};
    for (const co of cos) {
      const r = runs.get(co.label)!.map((x) => x[k]);
      rec[co.label] = errors.has(co.label) ? { error: errors.get(co.label)! } : { value: spread(r).median, spread: spread(r) };
    }
    out[k] = rec;
  }
  return out;
}

function parseOptions() {
  return parseArgs({
    options: {
      conns: { type: 'string', default: '10000' },
      runs: { type: 'string', default: '10' },
      'rss-runs': { type: 'string', default: '3' },
      against: { type: 'string' },
      out: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
}

const USAGE = `npm run footprint -- [options]   (node bench/dist/footprint.js [options])

The resource figures of issue #15 for this checkout, and with --against for
another one in the same run (interleaved, side by side, ratio this/against):
start-up time to the first WELCOME (median of --runs), idle RSS of a plain
\`meshbus start\` (median of --rss-runs) next to an empty Node process, node
RSS per idle client connection at --conns connections, browser ESM bundle
size, import('@meshbus/core') time, files over ${MAX_LINES} lines and import
cycles. A table on stdout, progress on stderr, JSON in
bench/results/footprint-<date>.json. Needs built checkouts (npx tsc -b).

  --conns N       idle client connections (default 10000; 0 skips them)
  --runs N        start-up and import runs (default 10)
  --rss-runs N    idle RSS runs (default 3)
  --against DIR   another built meshbus checkout to measure alongside
  --out FILE      write the JSON there instead
  --no-write      no JSON file
  -h, --help      this text
`;

async function main(): Promise<void> {
  const args = parseOptions();
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  const conns = int('conns', args.conns!, 0, 100_000);
  const runs = int('runs', args.runs!, 1, 50);
  const rssRuns = int('rss-runs', args['rss-runs']!, 1, 20);
  const cos = [checkout(THIS_ROOT, 'this')];
  if (args.against) cos.push(checkout(args.against, 'against'));
  if (cos.length === 2 && cos[0]!.label === cos[1]!.label) cos[1]!.label += '-against';
  const labels = cos.map((c) => c.label);
  const load0 = loadavg()[0]!;
  const t0 = Date.now();
  const rows: Row[] = [];

  log(`footprint of ${cos.map((c) => `${c.label} (${c.root})`).join(' against ')}`);
  log('source tree');
  const src = Object.fromEntries(cos.map((c) => [c.label, scanSource(c.root, MAX_LINES)]));
  const srcRec = (f: (s: (typeof src)[string]) => Value): Rec => Object.fromEntries(labels.map((l) => [l, f(src[l]!)]));
  rows.push({
    id: 'longFiles', figure: `source files over ${MAX_LINES} lines`, unit: 'count', target: { max: 0, source: ISSUE },
    values: srcRec((s) => ({ value: s.longFiles.length, note: `${s.files} files; ${s.longFiles.map((f) => `${f.file} ${f.lines}`).join(', ') || 'none over'}` })),
  });
  rows.push({ id: 'longest', figure: 'longest source file', unit: 'lines', values: srcRec((s) => ({ value: s.longest?.lines ?? 0 })) });
  const cyc = (cs: string[][]): string => cs.map((c) => `{${c.join(' ')}}`).join(' ') || 'none';
  rows.push({ id: 'cycles', figure: 'import cycles (incl. import type)', unit: 'count', target: { max: 0, source: ISSUE }, values: srcRec((s) => ({ value: s.cycles.length, note: cyc(s.cycles) })) });
  rows.push({ id: 'runtimeCycles', figure: 'import cycles (runtime imports)', unit: 'count', target: { max: 0, source: ISSUE }, values: srcRec((s) => ({ value: s.runtimeCycles.length })) });

  log('browser bundle');
  const bundles: Rec = {};
  let goal: number | undefined;
  for (const co of cos) {
    const b = bundleSize(co, log);
    goal ??= b?.goal;
    bundles[co.label] = b ? { value: b.gzip, note: `${b.minified} B minified, ${b.gzip} B gzip -9 (${b.source === 'built' ? 'built now' : 'sdk/dist-browser/sizes.json'})` } : { error: 'no sdk/dist-browser/sizes.json and no build-browser script' };
  }
  rows.push({ id: 'bundleGzip', figure: 'browser ESM bundle (gzip)', unit: 'KB', target: goal ? { max: goal, source: 'sdk goal' } : undefined, values: bundles });

  log(`import time: ${runs} fresh processes each`);
  const imp = await rounds(cos, runs, 'import', async (co) => {
    const core = await importOnce(co, '@meshbus/core');
    const bull = await importOnce(co, 'bullmq');
    return { core: core.wall, coreCpu: core.cpu, bull: bull.wall, bullCpu: bull.cpu };
  });
  rows.push({ id: 'importCore', figure: "import('@meshbus/core')", unit: 'ms', values: imp.core });
  rows.push({ id: 'importCoreCpu', figure: "  CPU of that import", unit: 'ms', values: imp.coreCpu });
  rows.push({ id: 'importBullmq', figure: "import('bullmq') alone", unit: 'ms', values: imp.bull });
  rows.push({ id: 'importBullmqCpu', figure: "  CPU of that import", unit: 'ms', values: imp.bullCpu });

  log(`start-up: ${runs} runs each`);
  const up = await rounds(cos, runs, 'start-up', startupOnce);
  rows.push({ id: 'startup', figure: 'start-up to first WELCOME', unit: 'ms', target: { max: 400, source: ISSUE }, values: up.wall });
  rows.push({ id: 'startupCpu', figure: '  node CPU by then', unit: 'ms', values: up.cpu });

  log(`idle RSS: ${rssRuns} runs each (${SETTLE_MS / 1000} s settle)`);
  const empty: number[] = [];
  const idle = await rounds(cos, rssRuns, 'idle RSS', async (co) => {
    const [f, e] = await Promise.all([idleRssOnce(co), co === cos[0] ? emptyNodeRss() : Promise.resolve(NaN)]);
    if (Number.isFinite(e)) empty.push(e);
    return { rss: f.rss, firstHttp: f.firstHttpMs, rssAfterHttp: f.rssAfterHttp };
  });
  rows.push({ id: 'idleRss', figure: 'node RSS at idle', unit: 'MB', target: { max: 60 * MB, source: ISSUE }, values: idle.rss });
  rows.push({ id: 'firstHttp', figure: '  first HTTP request then (/healthz)', unit: 'ms', values: idle.firstHttp });
  rows.push({ id: 'idleRssAfterHttp', figure: `  node RSS ${AFTER_HTTP_MS / 1000} s after it`, unit: 'MB', values: idle.rssAfterHttp });
  const emptyValue: Value | undefined = empty.length ? { value: spread(empty).median, spread: spread(empty), note: `node -e 'setTimeout(…)', same Node binary` } : undefined;
  if (emptyValue) rows.push({ id: 'emptyNodeRss', figure: 'empty Node process RSS', unit: 'MB', values: Object.fromEntries(labels.map((l) => [l, emptyValue])) });

  const connsDetail: Record<string, unknown> = {};
  if (conns > 0) {
    log(`idle connections: ${conns.toLocaleString('en')} each, one subscription each`);
    const per: Rec = {};
    for (const co of cos) {
      try {
        const f = await idleConns(co, conns, log);
        connsDetail[co.label] = f;
        const warn = f.openAtEnd < f.connections ? `; only ${f.openAtEnd} still open at the end: figure invalid` : '';
        const b = f.nodeBefore;
        const a = f.nodeAfter;
        const view = a && b
          ? `; node says ${a.connections} connections, ${a.subscriptions} subscriptions, heapUsed ${(b.heapUsed / MB).toFixed(1)} → ${(a.heapUsed / MB).toFixed(1)} MB (${((a.heapUsed - b.heapUsed) / f.connections / KB).toFixed(2)} KB per connection)`
          : '';
        per[co.label] = { value: f.bytesPerConn, note: `RSS ${(f.rssBefore / MB).toFixed(1)} → ${(f.rssAfter / MB).toFixed(1)} MB for ${f.connections} connections${view}${warn}` };
      } catch (e) {
        per[co.label] = { error: (e as Error).message };
      }
    }
    rows.push({ id: 'bytesPerConn', figure: `node RSS per idle connection (${conns.toLocaleString('en')})`, unit: 'KB', target: { max: 8 * KB, source: ISSUE }, values: per });
  }

  const table = textTable(rows, labels);
  process.stdout.write(table + '\n');
  const load1 = loadavg()[0]!;
  process.stdout.write(`\nload average ${load0.toFixed(1)} → ${load1.toFixed(1)}; ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);

  const report = {
    date: new Date().toISOString(),
    machine: { ...machine(), loadStart: load0, loadEnd: load1 },
    settings: { conns, runs, rssRuns, settleMs: SETTLE_MS, units: '1 KB = 1024 B, 1 MB = 1048576 B; ms' },
    checkouts: cos.map((c) => ({ label: c.label, root: c.root, commit: c.commit })),
    figures: rows.map((r) => ({
      ...r,
      verdict: Object.fromEntries(labels.map((l) => [l, pass(r, l) === undefined ? (r.target ? 'unmeasured' : 'report only') : pass(r, l) ? 'pass' : 'fail'])),
      ...(labels.length > 1 ? { ratio: ratio(r, labels[0]!, labels[1]!) } : {}),
    })),
    source: src,
    idleConnections: connsDetail,
  };
  if (!args['no-write']) {
    const file = args.out ?? join(THIS_ROOT, 'bench', 'results', `footprint-${report.date.slice(0, 19).replace(/:/g, '-')}.json`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
    log(`wrote ${file}`);
  }
}

// Nodes and client processes never outlive the run: SIGINT/SIGTERM go through exit, which kills them.
process.once('exit', killAllNodes);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`footprint: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);

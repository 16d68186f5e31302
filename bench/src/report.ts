/** The report: machine, results, ratios meshbus/peer; JSON, a text table and an SVG bar chart. */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { which } from './proc.js';
import type { RunResult } from './runner.js';
import type { TargetName } from './targets/index.js';

export interface Machine {
  cores: number;
  cpu: string;
  node: string;
  platform: string;
  memoryGiB: number;
}

export function machine(): Machine {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    /* not Linux */
  }
  return { cores: cpus().length, cpu, node: process.version, platform: `${process.platform} ${process.arch}`, memoryGiB: Math.round(totalmem() / 2 ** 30) };
}

/** What names a run in every figure: when, how loaded the machine was, which versions. */
export interface RunInfo {
  /** 1-, 5- and 15-minute load averages at the start and at the end of the run. */
  loadStart: number[];
  loadEnd?: number[];
  versions: { node: string; natsServer?: string; redisServer?: string; meshbus: string };
}

const here = dirname(fileURLToPath(import.meta.url));

function quiet(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
  } catch {
    return undefined;
  }
}

/** Load average now and the versions of everything measured (meshbus: the checkout's git commit, `+dirty` with uncommitted changes). */
export function runInfo(): RunInfo {
  const nats = which('nats-server');
  const redis = which('redis-server');
  // The checkout whose node is measured: MESHBUS_BENCH_BIN's when set (targets/meshbus.ts), else the harness's.
  const at = process.env.MESHBUS_BENCH_BIN ? dirname(process.env.MESHBUS_BENCH_BIN) : here;
  const commit = quiet('git', ['-C', at, 'rev-parse', '--short', 'HEAD']);
  const dirty = quiet('git', ['-C', at, 'status', '--porcelain', '--untracked-files=no']);
  return {
    loadStart: loadavg().map((x) => Math.round(x * 100) / 100),
    versions: {
      node: process.version,
      natsServer: nats ? quiet(nats, ['--version'])?.replace(/^nats-server:\s*/, '') : undefined,
      redisServer: redis ? /v=(\S+)/.exec(quiet(redis, ['--version']) ?? '')?.[1] : undefined,
      meshbus: commit ? `${commit}${dirty ? '+dirty' : ''}` : 'unknown',
    },
  };
}

/** One line naming the run, for every chart and table: date, load, versions. */
export function runLabel(report: Pick<Report, 'date' | 'run' | 'machine'>): string {
  const r = report.run;
  const load = r ? `load ${r.loadStart[0]}${r.loadEnd ? `→${r.loadEnd[0]}` : ''}` : '';
  const v = r?.versions;
  const vs = v ? `meshbus ${v.meshbus}, nats-server ${v.natsServer ?? '—'}, Node ${v.node}` : `Node ${report.machine.node}`;
  return `${report.date.slice(0, 16).replace('T', ' ')} UTC, ${report.machine.cores} cores, ${load}, ${vs}`;
}

/** What meshbus is compared with: the peers, the ceiling (relay) and, for WebSocket rows, meshbus over TCP. */
export type Versus = 'nats' | 'redis' | 'relay' | 'tcp';

/** One line of the ratio table: meshbus against each peer, for one scenario and payload. */
export interface RatioRow {
  scenario: string;
  payload: number;
  /** What is compared: 'rate' (higher is better) or latency/memory (lower is better). */
  metric: 'rate' | 'p50' | 'p99' | 'p99.9' | 'rssPer10k' | 'memPerSub';
  values: Partial<Record<TargetName, number>>;
  lost: Partial<Record<TargetName, number>>;
  /** Server CPU ns per delivered event (stream scenarios, servers started by the harness). */
  serverNs: Partial<Record<TargetName, number>>;
  /** meshbus / peer; `relay`: meshbus / ceiling; `tcp`: meshbus over WebSocket / meshbus over TCP (the same scenario without `-ws`, run beside it in each round: RunResult.tcpTwin). */
  ratio: Partial<Record<Versus, number>>;
}

export interface Report {
  date: string;
  machine: Machine;
  run?: RunInfo;
  settings: { durationMs: number; warmupMs: number; full: boolean; sizes: number[]; rounds?: number };
  targets: Array<{ name: TargetName; status: 'ok' | 'skipped'; reason?: string }>;
  notes: string[];
  results: RunResult[];
  ratios: RatioRow[];
}

const PEERS = ['nats', 'redis', 'relay'] as const;
const BARS: readonly Versus[] = ['nats', 'redis', 'relay', 'tcp'];

function metricOf(r: RunResult, m: RatioRow['metric']): number | undefined {
  if (r.skipped || r.error) return undefined;
  if (m === 'rate') return r.rate;
  if (m === 'rssPer10k') return r.rssPer10k;
  if (m === 'memPerSub') return r.memPerSub;
  const l = r.latency;
  if (!l || l.count === 0) return undefined;
  return m === 'p50' ? l.p50 : m === 'p99' ? l.p99 : l.p999;
}

const round2 = (x: number): number => Math.round(x * 100) / 100;

export function ratios(results: RunResult[]): RatioRow[] {
  const rows: RatioRow[] = [];
  const keys = [...new Set(results.map((r) => `${r.scenario}\u0000${r.payload}`))];
  for (const k of keys) {
    const [scenario, p] = k.split('\u0000') as [string, string];
    const rs = results.filter((r) => r.scenario === scenario && r.payload === Number(p));
    const metrics: Array<RatioRow['metric']> = rs.some((r) => r.latency)
      ? ['p50', 'p99', 'p99.9']
      : rs.some((r) => r.rssPer10k !== undefined)
        ? ['rssPer10k']
        : rs.some((r) => r.memPerSub !== undefined)
          ? ['rate', 'memPerSub']
          : ['rate'];
    for (const metric of metrics) {
      const row: RatioRow = { scenario, payload: Number(p), metric, values: {}, lost: {}, serverNs: {}, ratio: {} };
      for (const r of rs) {
        const v = metricOf(r, metric);
        if (v !== undefined) row.values[r.target] = v;
        if (metric === 'memPerSub') continue;
        if (r.serverNsPerMsg !== undefined) row.serverNs[r.target] = r.serverNsPerMsg;
        if (r.lost !== undefined) row.lost[r.target] = r.lost;
        else if (r.timeouts !== undefined) row.lost[r.target] = r.timeouts;
      }
      const mb = row.values.meshbus;
      for (const peer of PEERS) {
        const v = row.values[peer];
        if (mb !== undefined && v !== undefined && v > 0) row.ratio[peer] = round2(mb / v);
      }
      if (scenario.endsWith('-ws') && metric === 'rate' && mb !== undefined) {
        // The TCP twin run in the same rounds, else (older reports, --targets without it) the TCP scenario of the run.
        const twin = rs.find((r) => r.target === 'meshbus')?.tcpTwin;
        const tcp = twin && !twin.error ? twin.rate : results.find((r) => r.scenario === scenario.slice(0, -3) && r.payload === Number(p) && r.target === 'meshbus' && !r.error)?.rate;
        if (tcp) row.ratio.tcp = round2(mb / tcp);
      }
      rows.push(row);
    }
  }
  return rows;
}

export const fmtN = (n: number | undefined): string => (n === undefined ? '—' : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e4 ? `${(n / 1e3).toFixed(0)} k` : String(n));
export const fmtSize = (b: number): string => (b >= 1024 ? `${b / 1024} KiB` : `${b} B`);
const unit = (m: RatioRow['metric']): string => (m === 'rate' ? 'msg/s' : m === 'rssPer10k' ? 'B/10k conns' : m === 'memPerSub' ? 'B/subscription' : 'µs');

/** A Markdown table of the ratios with losses (the one for bench/README.md). */
export function markdownTable(rows: RatioRow[]): string {
  const out = [
    '| scenario | payload | metric | meshbus | NATS | Redis | ceiling | meshbus/NATS | meshbus/Redis | meshbus/ceiling (WS/TCP) | lost (meshbus / NATS / Redis / ceiling) | server ns/msg (meshbus / NATS / Redis / ceiling) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  const all = ['meshbus', 'nats', 'redis', 'relay'] as const;
  for (const r of rows) {
    const lost = all.map((t) => (r.lost[t] === undefined ? '—' : String(r.lost[t]))).join(' / ');
    const ns = r.serverNs && Object.keys(r.serverNs).length ? all.map((t) => String(r.serverNs[t] ?? '—')).join(' / ') : '';
    const size = r.metric === 'rssPer10k' ? '—' : fmtSize(r.payload);
    const ceil = r.ratio.relay !== undefined ? String(r.ratio.relay) : r.ratio.tcp !== undefined ? `(${r.ratio.tcp})` : '—';
    out.push(
      `| ${r.scenario} | ${size} | ${r.metric} (${unit(r.metric)}) | ${fmtN(r.values.meshbus)} | ${fmtN(r.values.nats)} | ${fmtN(r.values.redis)} | ${fmtN(r.values.relay)} | ${r.ratio.nats ?? '—'} | ${r.ratio.redis ?? '—'} | ${ceil} | ${r.metric === 'rate' || r.metric === 'p50' ? lost : ''} | ${ns} |`,
    );
  }
  return out.join('\n');
}

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A ratio oriented so that > 1 means meshbus is better (latency and memory inverted); undefined when there is none. */
function better(r: RatioRow, b: Versus): number | undefined {
  const v = r.ratio[b];
  if (v === undefined) return undefined;
  return r.metric === 'rate' ? v : v > 0 ? 1 / v : undefined;
}

/**
 * Horizontal bars of meshbus/peer ratios, one group per scenario and
 * payload, with the absolute values of the row beside them; the dashed line
 * is parity, the dotted one 0.75 (the ceiling target). For latency and
 * memory the ratio is inverted (peer/meshbus) so that right of the line
 * always means meshbus is better. The title names the run (date, load, versions).
 */
export function svgChart(report: Report): string {
  const rows = report.ratios.filter((r) => r.metric !== 'p99.9' && BARS.some((b) => better(r, b) !== undefined));
  const barH = 14;
  const left = 250;
  const width = 1280;
  const plotW = 520;
  const top = 64;
  const bars = (r: RatioRow): Versus[] => BARS.filter((b) => better(r, b) !== undefined);
  const groupH = (r: RatioRow): number => barH * bars(r).length + 10;
  const height = top + rows.reduce((a, r) => a + groupH(r), 0) + 50;
  const maxV = Math.max(2, ...rows.flatMap((r) => BARS.map((b) => better(r, b) ?? 0)));
  const x = (v: number): number => left + (Math.min(v, maxV) / maxV) * plotW;
  const colors: Record<Versus, string> = { nats: '#2a7ab9', redis: '#c0392b', relay: '#27ae60', tcp: '#e67e22' };
  const names: Record<Versus, string> = { nats: 'vs NATS', redis: 'vs Redis', relay: 'of the ceiling (byte relay)', tcp: 'WebSocket / TCP' };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">meshbus vs peers (&gt; 1 = meshbus better; rate: meshbus/peer, latency &amp; memory: peer/meshbus); absolute values at right</text>`,
    `<text x="10" y="38" fill="#555">${esc(`${runLabel(report)}, ${report.machine.cpu}, ${report.settings.durationMs / 1000} s per run`)}</text>`,
  ];
  let lx = left;
  for (const b of BARS) {
    parts.push(`<rect x="${lx}" y="46" width="12" height="10" fill="${colors[b]}"/><text x="${lx + 16}" y="55">${esc(names[b])}</text>`);
    lx += 30 + names[b].length * 6.5;
  }
  let y = top;
  for (const r of rows) {
    const label = r.metric === 'rssPer10k' || r.metric === 'memPerSub' ? `${r.scenario} ${r.metric === 'memPerSub' ? 'B/subscription' : 'memory'}` : `${r.scenario} ${fmtSize(r.payload)}${r.metric === 'rate' ? '' : ` ${r.metric}`}`;
    const bs = bars(r);
    parts.push(`<text x="${left - 8}" y="${y + (barH * bs.length) / 2 + 4}" text-anchor="end">${esc(label)}</text>`);
    const abs = (['meshbus', 'nats', 'redis', 'relay'] as const)
      .filter((t) => r.values[t] !== undefined)
      .map((t) => `${t === 'relay' ? 'ceiling' : t} ${fmtN(r.values[t])}`)
      .join(' · ');
    parts.push(`<text x="${left + plotW + 60}" y="${y + (barH * bs.length) / 2 + 4}" fill="#333" font-size="11">${esc(`${abs} ${unit(r.metric)}`)}</text>`);
    bs.forEach((b, k) => {
      const v = better(r, b)!;
      const by = y + k * barH;
      parts.push(`<rect x="${left}" y="${by}" width="${(x(v) - left).toFixed(1)}" height="${barH - 2}" fill="${colors[b]}"/>`);
      parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${by + barH - 3}" font-size="10">${v.toFixed(2)}${v > maxV ? '+' : ''}</text>`);
    });
    y += groupH(r);
  }
  const bottom = y;
  parts.push(`<line x1="${x(1)}" y1="${top - 4}" x2="${x(1)}" y2="${bottom}" stroke="#000" stroke-dasharray="4 3"/>`);
  parts.push(`<line x1="${x(0.75)}" y1="${top - 4}" x2="${x(0.75)}" y2="${bottom}" stroke="#27ae60" stroke-dasharray="1 3"/>`);
  for (let v = 0; v <= maxV; v += maxV > 4 ? 1 : 0.5) parts.push(`<text x="${x(v)}" y="${bottom + 14}" text-anchor="middle" fill="#555" font-size="10">${v}</text>`);
  parts.push(`<line x1="${left}" y1="${bottom}" x2="${left + plotW}" y2="${bottom}" stroke="#999"/>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** A plain-text table of every run, printed at the end. */
export function textTable(results: RunResult[]): string {
  const lines = ['scenario        payload target   rate(msg/s)   lost        ooo  disc  latency p50/p99/p99.9 µs   note'];
  for (const r of results) {
    const lat = r.latency ? `${r.latency.p50}/${r.latency.p99}/${r.latency.p999}` : '';
    const note = r.skipped ? `skipped: ${r.skipped}` : r.error ? `ERROR: ${r.error}` : r.rssPer10k !== undefined ? `RSS/10k conns ${(r.rssPer10k / 2 ** 20).toFixed(1)} MiB` : '';
    lines.push(
      [
        r.scenario.padEnd(15),
        String(r.payload).padStart(7),
        r.target.padEnd(8),
        String(r.rate ?? '').padStart(12),
        String(r.lost ?? r.timeouts ?? '').padStart(10),
        String(r.outOfOrder ?? '').padStart(4),
        String(r.disconnects ?? '').padStart(5),
        lat.padStart(26),
        note,
      ].join(' '),
    );
  }
  return lines.join('\n');
}

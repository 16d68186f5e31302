/** The report: machine, results, ratios meshbus/peer; JSON, a text table and an SVG bar chart. */
import { cpus, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
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

/** One line of the ratio table: meshbus against each peer, for one scenario and payload. */
export interface RatioRow {
  scenario: string;
  payload: number;
  /** What is compared: 'rate' (higher is better) or latency/memory (lower is better). */
  metric: 'rate' | 'p50' | 'p99' | 'p99.9' | 'rssPer10k';
  values: Partial<Record<TargetName, number>>;
  lost: Partial<Record<TargetName, number>>;
  /** Server CPU ns per delivered event (stream scenarios, servers started by the harness). */
  serverNs: Partial<Record<TargetName, number>>;
  /** meshbus / peer. */
  ratio: Partial<Record<Exclude<TargetName, 'meshbus'>, number>>;
}

export interface Report {
  date: string;
  machine: Machine;
  settings: { durationMs: number; warmupMs: number; full: boolean; sizes: number[] };
  targets: Array<{ name: TargetName; status: 'ok' | 'skipped'; reason?: string }>;
  notes: string[];
  results: RunResult[];
  ratios: RatioRow[];
}

const PEERS = ['nats', 'redis'] as const;

function metricOf(r: RunResult, m: RatioRow['metric']): number | undefined {
  if (r.skipped || r.error) return undefined;
  if (m === 'rate') return r.rate;
  if (m === 'rssPer10k') return r.rssPer10k;
  const l = r.latency;
  if (!l || l.count === 0) return undefined;
  return m === 'p50' ? l.p50 : m === 'p99' ? l.p99 : l.p999;
}

export function ratios(results: RunResult[]): RatioRow[] {
  const rows: RatioRow[] = [];
  const keys = [...new Set(results.map((r) => `${r.scenario}\u0000${r.payload}`))];
  for (const k of keys) {
    const [scenario, p] = k.split('\u0000') as [string, string];
    const rs = results.filter((r) => r.scenario === scenario && r.payload === Number(p));
    const metrics: Array<RatioRow['metric']> = rs.some((r) => r.latency) ? ['p50', 'p99', 'p99.9'] : rs.some((r) => r.rssPer10k !== undefined) ? ['rssPer10k'] : ['rate'];
    for (const metric of metrics) {
      const row: RatioRow = { scenario, payload: Number(p), metric, values: {}, lost: {}, serverNs: {}, ratio: {} };
      for (const r of rs) {
        const v = metricOf(r, metric);
        if (v !== undefined) row.values[r.target] = v;
        if (r.serverNsPerMsg !== undefined) row.serverNs[r.target] = r.serverNsPerMsg;
        if (r.lost !== undefined) row.lost[r.target] = r.lost;
        else if (r.timeouts !== undefined) row.lost[r.target] = r.timeouts;
      }
      const mb = row.values.meshbus;
      for (const peer of PEERS) {
        const v = row.values[peer];
        if (mb !== undefined && v !== undefined && v > 0) row.ratio[peer] = Math.round((mb / v) * 100) / 100;
      }
      rows.push(row);
    }
  }
  return rows;
}

const fmtN = (n: number | undefined): string => (n === undefined ? '—' : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e4 ? `${(n / 1e3).toFixed(0)} k` : String(n));
const fmtSize = (b: number): string => (b >= 1024 ? `${b / 1024} KiB` : `${b} B`);
const unit = (m: RatioRow['metric']): string => (m === 'rate' ? 'msg/s' : m === 'rssPer10k' ? 'B/10k conns' : 'µs');

/** A Markdown table of the ratios with losses (the one for bench/README.md). */
export function markdownTable(rows: RatioRow[]): string {
  const out = [
    '| scenario | payload | metric | meshbus | NATS | Redis | meshbus/NATS | meshbus/Redis | lost (meshbus / NATS / Redis) | server ns/msg (meshbus / NATS / Redis) |',
    '|---|---|---|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const r of rows) {
    const lost = (['meshbus', 'nats', 'redis'] as const).map((t) => (r.lost[t] === undefined ? '—' : String(r.lost[t]))).join(' / ');
    const ns = r.serverNs && Object.keys(r.serverNs).length ? (['meshbus', 'nats', 'redis'] as const).map((t) => String(r.serverNs[t] ?? '—')).join(' / ') : '';
    const size = r.metric === 'rssPer10k' ? '—' : fmtSize(r.payload);
    out.push(
      `| ${r.scenario} | ${size} | ${r.metric} (${unit(r.metric)}) | ${fmtN(r.values.meshbus)} | ${fmtN(r.values.nats)} | ${fmtN(r.values.redis)} | ${r.ratio.nats ?? '—'} | ${r.ratio.redis ?? '—'} | ${r.metric === 'rate' || r.metric === 'p50' ? lost : ''} | ${ns} |`,
    );
  }
  return out.join('\n');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * Horizontal bars of meshbus/peer ratios, one group per scenario and
 * payload; the dashed line is parity. For latency and memory the ratio is
 * inverted (peer/meshbus) so that right of the line always means meshbus is better.
 */
export function svgChart(report: Report): string {
  const rows = report.ratios.filter((r) => r.metric !== 'p99.9' && Object.keys(r.ratio).length > 0);
  const barH = 14;
  const groupH = barH * 2 + 10;
  const left = 250;
  const width = 900;
  const plotW = width - left - 80;
  const top = 64;
  const height = top + rows.length * groupH + 50;
  const better = (r: RatioRow, peer: 'nats' | 'redis'): number | undefined => {
    const v = r.ratio[peer];
    if (v === undefined) return undefined;
    return r.metric === 'rate' ? v : v > 0 ? 1 / v : undefined;
  };
  const maxV = Math.max(2, ...rows.flatMap((r) => PEERS.map((p) => better(r, p) ?? 0)));
  const x = (v: number): number => left + (Math.min(v, maxV) / maxV) * plotW;
  const colors = { nats: '#2a7ab9', redis: '#c0392b' } as const;
  const m = report.machine;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">meshbus vs peers (&gt; 1 = meshbus better; rate: meshbus/peer, latency &amp; memory: peer/meshbus)</text>`,
    `<text x="10" y="38" fill="#555">${esc(`${report.date}, ${m.cores} cores ${m.cpu}, Node ${m.node}, ${report.settings.durationMs / 1000} s per run`)}</text>`,
    `<rect x="${left}" y="46" width="12" height="10" fill="${colors.nats}"/><text x="${left + 16}" y="55">vs NATS</text>`,
    `<rect x="${left + 90}" y="46" width="12" height="10" fill="${colors.redis}"/><text x="${left + 106}" y="55">vs Redis</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * groupH;
    const label = r.metric === 'rssPer10k' ? `${r.scenario} memory` : `${r.scenario} ${fmtSize(r.payload)}${r.metric === 'rate' ? '' : ` ${r.metric}`}`;
    parts.push(`<text x="${left - 8}" y="${y + barH + 4}" text-anchor="end">${esc(label)}</text>`);
    PEERS.forEach((p, k) => {
      const v = better(r, p);
      const by = y + k * barH;
      if (v === undefined) {
        parts.push(`<text x="${left + 4}" y="${by + barH - 3}" fill="#999" font-size="10">${p}: n/a</text>`);
        return;
      }
      parts.push(`<rect x="${left}" y="${by}" width="${(x(v) - left).toFixed(1)}" height="${barH - 2}" fill="${colors[p]}"/>`);
      parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${by + barH - 3}" font-size="10">${v.toFixed(2)}${v > maxV ? '+' : ''}</text>`);
    });
  });
  const bottom = top + rows.length * groupH;
  parts.push(`<line x1="${x(1)}" y1="${top - 4}" x2="${x(1)}" y2="${bottom}" stroke="#000" stroke-dasharray="4 3"/>`);
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

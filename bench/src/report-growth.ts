/**
 * "Cost as the work grows" (growth scenarios), delivery latency under load
 * (paced scenarios) and the ceiling: their Markdown tables and the growth
 * chart (server CPU per delivered event against subscriptions on the node
 * and against topics in flight, log x axis, one line per target, rates and
 * memory per subscription printed on it).
 */
import { esc, fmtN, fmtSize, runLabel, type Report } from './report.js';
import type { RunResult } from './runner.js';
import { scenarios } from './scenarios.js';
import type { TargetName } from './targets/types.js';

type Series = 'subscriptions' | 'topics';
const SERIES: readonly Series[] = ['subscriptions', 'topics'];
const LINE_TARGETS = ['meshbus', 'nats'] as const;

interface Point {
  x: number;
  ns?: number;
  rate?: number;
  memPerSub?: number;
}

/** Growth points per series and target, in x order. */
export function growthPoints(results: RunResult[]): Record<Series, Partial<Record<TargetName, Point[]>>> {
  const g = new Map(scenarios(true).filter((s) => s.growth).map((s) => [s.id, s.growth!]));
  const out: Record<Series, Partial<Record<TargetName, Point[]>>> = { subscriptions: {}, topics: {} };
  for (const r of results) {
    const at = g.get(r.scenario);
    if (!at || r.error || r.skipped) continue;
    (out[at.series][r.target] ??= []).push({ x: at.x, ns: r.serverNsPerMsg, rate: r.rate, memPerSub: r.memPerSub });
  }
  for (const s of SERIES) for (const t of Object.values(out[s])) t.sort((a, b) => a.x - b.x);
  return out;
}

/** Markdown: one line per growth point, meshbus beside NATS. */
export function growthTable(results: RunResult[]): string {
  const pts = growthPoints(results);
  const out = [
    '| series | x | server ns/delivered event (meshbus / NATS) | rate msg/s (meshbus / NATS) | node RSS per subscription, B (meshbus / NATS) |',
    '|---|---:|---|---|---|',
  ];
  for (const s of SERIES) {
    const xs = [...new Set(LINE_TARGETS.flatMap((t) => (pts[s][t] ?? []).map((p) => p.x)))].sort((a, b) => a - b);
    for (const x of xs) {
      const at = (t: TargetName): Point | undefined => pts[s][t]?.find((p) => p.x === x);
      const col = (f: (p: Point) => number | undefined, fmt: (n: number | undefined) => string): string => LINE_TARGETS.map((t) => fmt(at(t) ? f(at(t)!) : undefined)).join(' / ');
      out.push(`| ${s} | ${x.toLocaleString('en')} | ${col((p) => p.ns, (n) => (n === undefined ? '—' : String(n)))} | ${col((p) => p.rate, fmtN)} | ${s === 'subscriptions' ? col((p) => p.memPerSub, (n) => (n === undefined ? '—' : String(n))) : ''} |`);
    }
  }
  return out.join('\n');
}

/** Markdown: delivery latency at the paced rate, per target and size. */
export function loadTable(results: RunResult[]): string {
  const rs = results.filter((r) => r.pacedRate !== undefined && r.latency);
  const out = ['| scenario | payload | target | max rate (1to1) | paced at | received | p50 µs | p99 µs | p99.9 µs | max µs | skipped | server ns/msg |', '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const r of rs) {
    const l = r.latency!;
    out.push(`| ${r.scenario} | ${fmtSize(r.payload)} | ${r.target} | ${fmtN(r.maxRate)} | ${fmtN(r.pacedRate)} | ${fmtN(r.rate)} | ${l.p50} | ${l.p99} | ${l.p999} | ${l.max} | ${r.pacedSkipped ?? 0} | ${r.serverNsPerMsg ?? '—'} |`);
  }
  return out.join('\n');
}

/** Two panels: ns per delivered event against subscriptions, and against topics (log x). */
export function growthSvg(report: Report): string {
  const pts = growthPoints(report.results);
  const W = 1080;
  const H = 430;
  const panelW = 400;
  const panelH = 280;
  const top = 80;
  const colors: Record<string, string> = { meshbus: '#8e44ad', nats: '#2a7ab9' };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">Cost as the work grows: node CPU per delivered event (1 → 1, 128 B; lower is better; labels: ns, rate)</text>`,
    `<text x="10" y="38" fill="#555">${esc(runLabel(report))}</text>`,
  ];
  let lx = 10;
  for (const t of LINE_TARGETS) {
    parts.push(`<rect x="${lx}" y="48" width="12" height="10" fill="${colors[t]}"/><text x="${lx + 16}" y="57">${t === 'nats' ? 'nats-server' : 'meshbus node'}</text>`);
    lx += 130;
  }
  SERIES.forEach((s, i) => {
    const ox = 70 + i * (panelW + 110);
    const all = LINE_TARGETS.flatMap((t) => pts[s][t] ?? []);
    const xs = all.map((p) => p.x);
    const ys = all.map((p) => p.ns ?? 0);
    const xmin = Math.log10(Math.min(1, ...xs));
    const xmax = Math.max(xmin + 1, Math.log10(Math.max(1, ...xs)));
    const ymax = Math.max(100, ...ys) * 1.15;
    const px = (x: number): number => ox + ((Math.log10(x) - xmin) / (xmax - xmin)) * panelW;
    const py = (y: number): number => top + panelH - (y / ymax) * panelH;
    parts.push(`<line x1="${ox}" y1="${top + panelH}" x2="${ox + panelW}" y2="${top + panelH}" stroke="#999"/>`);
    parts.push(`<line x1="${ox}" y1="${top}" x2="${ox}" y2="${top + panelH}" stroke="#999"/>`);
    parts.push(`<text x="${ox + panelW / 2}" y="${top + panelH + 36}" text-anchor="middle">${s === 'subscriptions' ? 'subscriptions on the node (log)' : 'distinct topics in flight (log)'}</text>`);
    parts.push(`<text x="${ox - 50}" y="${top - 10}" fill="#555">ns/event</text>`);
    for (let k = 0; k <= 4; k++) {
      const v = Math.round((ymax * k) / 4);
      parts.push(`<text x="${ox - 6}" y="${py(v) + 4}" text-anchor="end" fill="#555" font-size="10">${v}</text>`);
    }
    for (const x of [...new Set(xs)]) parts.push(`<text x="${px(x)}" y="${top + panelH + 16}" text-anchor="middle" fill="#555" font-size="10">${x.toLocaleString('en')}</text>`);
    LINE_TARGETS.forEach((t, k) => {
      const line = (pts[s][t] ?? []).filter((p) => p.ns !== undefined);
      if (line.length === 0) return;
      parts.push(`<polyline fill="none" stroke="${colors[t]}" stroke-width="2" points="${line.map((p) => `${px(p.x).toFixed(1)},${py(p.ns!).toFixed(1)}`).join(' ')}"/>`);
      for (const p of line) {
        parts.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.ns!).toFixed(1)}" r="3" fill="${colors[t]}"/>`);
        const mem = p.memPerSub !== undefined ? `, ${p.memPerSub} B/sub` : '';
        // Above the point when this line is the higher one at this x (or the only one), below otherwise: labels do not cross.
        const other = (pts[s][LINE_TARGETS[1 - k]!] ?? []).find((q) => q.x === p.x)?.ns;
        const above = other === undefined ? k === 0 : p.ns! >= other;
        parts.push(`<text x="${(px(p.x) + 5).toFixed(1)}" y="${(py(p.ns!) + (above ? -6 : 14)).toFixed(1)}" font-size="10" fill="${colors[t]}">${esc(`${p.ns} ns, ${fmtN(p.rate)}/s${mem}`)}</text>`);
      }
    });
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/**
 * The footprint report: one row per figure, its target and verdict for each
 * checkout measured, the ratio this/against; as a text table and JSON.
 * Units: 1 KB = 1,024 B, 1 MB = 1,048,576 B (what /proc's "kB" means).
 */

/** min / median / max of repeated runs, and the runs themselves. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function spread(runs: number[]): Spread {
  const s = [...runs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, runs };
}

export type Unit = 'ms' | 'MB' | 'KB' | 'B' | 'count' | 'lines';

export interface Target {
  /** Pass when value ≤ max. */
  max: number;
  /** Where the bound comes from, e.g. "issue #15". */
  source: string;
}

/** One figure of one checkout: its value (for repeated runs the median) and, for repeated runs, the spread. */
export interface Value {
  value: number;
  spread?: Spread;
  /** Extra words for the table, e.g. which files or cycles. */
  note?: string;
}

export interface Row {
  id: string;
  figure: string;
  unit: Unit;
  /** undefined: reported only (the issue gives no bound). */
  target?: Target;
  /** Per checkout label; missing = not measured there (with the reason). */
  values: Record<string, Value | { error: string }>;
}

const SCALE: Record<Unit, number> = { ms: 1, MB: 2 ** 20, KB: 1024, B: 1, count: 1, lines: 1 };

/** A value in bytes (or ms, count) shown in the row's unit. */
export function show(v: number, unit: Unit): string {
  const x = v / SCALE[unit];
  const digits = unit === 'count' || unit === 'lines' || unit === 'B' ? 0 : x < 10 ? 2 : 1;
  return `${x.toFixed(digits)}${unit === 'count' || unit === 'lines' ? '' : ' ' + unit}`;
}

export function pass(row: Row, label: string): boolean | undefined {
  const v = row.values[label];
  if (!row.target || !v || 'error' in v) return undefined;
  return v.value <= row.target.max;
}

function cell(row: Row, label: string): string {
  const v = row.values[label];
  if (!v) return '—';
  if ('error' in v) return 'error';
  let s = show(v.value, row.unit);
  if (v.spread && v.spread.runs.length > 1) s += ` [${show(v.spread.min, row.unit)}–${show(v.spread.max, row.unit)}]`;
  return s;
}

function verdict(row: Row, label: string): string {
  const p = pass(row, label);
  return p === undefined ? (row.target ? '—' : 'info') : p ? 'PASS' : 'FAIL';
}

/** this / against, for figures where both are positive numbers. */
export function ratio(row: Row, a: string, b: string): number | undefined {
  const x = row.values[a];
  const y = row.values[b];
  if (!x || !y || 'error' in x || 'error' in y || y.value === 0) return undefined;
  return x.value / y.value;
}

/** A plain-text table; `labels[0]` is this checkout, `labels[1]` (if any) the one compared against. */
export function textTable(rows: Row[], labels: string[]): string {
  const head = ['figure', 'target', ...labels.flatMap((l) => [l, '']), ...(labels.length > 1 ? [`${labels[0]}/${labels[1]}`] : [])];
  const body = rows.map((r) => [
    r.figure,
    r.target ? `≤ ${show(r.target.max, r.unit)} (${r.target.source})` : 'report only',
    ...labels.flatMap((l) => [cell(r, l), verdict(r, l)]),
    ...(labels.length > 1 ? [ratio(r, labels[0]!, labels[1]!)?.toFixed(2) ?? '—'] : []),
  ]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 || i === 1 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  const notes = rows.flatMap((r) =>
    labels.flatMap((l) => {
      const v = r.values[l];
      if (!v) return [];
      if ('error' in v) return [`${r.figure} (${l}): ${v.error}`];
      return v.note ? [`${r.figure} (${l}): ${v.note}`] : [];
    }),
  );
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...body.map(line), '', ...notes].join('\n');
}

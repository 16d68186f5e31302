/**
 * Summarises V8 .cpuprofile files (node --cpu-prof): the functions with the
 * most self time, and the inclusive time of meshbus's own functions, so the
 * hot path of a node can be read without a browser.
 *
 *   node bench/dist/cpuprofile.js <file.cpuprofile>... [--top 30]
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface FnTime {
  fn: string;
  selfMs: number;
  totalMs: number;
  selfPct: number;
  totalPct: number;
}

function key(n: ProfileNode): string {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules\/|(?=(proto|core|cluster|sdk|native|bench)\/))/, '');
  return `${n.callFrame.functionName || '(anonymous)'} ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ''}`.trim();
}

export function summarize(p: Profile): { totalMs: number; fns: FnTime[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const samples = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const totalMs = (p.endTime - p.startTime) / 1000;
  const msPerHit = samples ? totalMs / samples : 0;
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  // Inclusive: each sample counts once per distinct function on its stack.
  const walk = (n: ProfileNode, onStack: Set<string>): number => {
    const k = key(n);
    const fresh = !onStack.has(k);
    if (fresh) onStack.add(k);
    let hits = n.hitCount ?? 0;
    self.set(k, (self.get(k) ?? 0) + hits);
    let sub = 0;
    for (const c of n.children ?? []) sub += walk(byId.get(c)!, onStack);
    hits += sub;
    if (fresh) {
      total.set(k, (total.get(k) ?? 0) + hits);
      onStack.delete(k);
    }
    return hits;
  };
  walk(p.nodes[0]!, new Set());
  const fns = [...total.keys()].map((fn) => ({
    fn,
    selfMs: Math.round((self.get(fn) ?? 0) * msPerHit),
    totalMs: Math.round(total.get(fn)! * msPerHit),
    selfPct: Math.round(((self.get(fn) ?? 0) / samples) * 1000) / 10,
    totalPct: Math.round((total.get(fn)! / samples) * 1000) / 10,
  }));
  return { totalMs, fns };
}

function main(argv: string[]): void {
  const ti = argv.indexOf('--top');
  const top = ti >= 0 ? Number(argv[ti + 1]) : 30;
  const files = argv.filter((a, i) => a !== '--top' && (ti < 0 || i !== ti + 1));
  for (const f of files) {
    const { totalMs, fns } = summarize(JSON.parse(readFileSync(f, 'utf8')) as Profile);
    const idle = fns.find((x) => x.fn.startsWith('(idle)'));
    const out = [`# ${f}`, `${Math.round(totalMs)} ms profiled, idle ${idle?.selfPct ?? 0}%`, '', `## top ${top} by self time`, ' self%  total%  function'];
    for (const x of [...fns].sort((a, b) => b.selfMs - a.selfMs).slice(0, top)) out.push(`${x.selfPct.toFixed(1).padStart(6)} ${x.totalPct.toFixed(1).padStart(7)}  ${x.fn}`);
    out.push('', `## meshbus functions by inclusive time`, ' self%  total%  function');
    for (const x of fns.filter((x) => /^\S+ (proto|core|cluster|native)\//.test(x.fn)).sort((a, b) => b.totalMs - a.totalMs).slice(0, top))
      out.push(`${x.selfPct.toFixed(1).padStart(6)} ${x.totalPct.toFixed(1).padStart(7)}  ${x.fn}`);
    process.stdout.write(out.join('\n') + '\n\n');
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main(process.argv.slice(2));

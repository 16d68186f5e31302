/**
 * Static figures of a checkout's source tree: line counts of the non-test
 * TypeScript under every `<package>/src`, and import cycles in the graph of
 * relative imports between those files. A text scan, no compiler: enough for
 * `import … from './x.js'` / `export … from './x.js'` / `import './x.js'`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

export interface LongFile {
  file: string;
  lines: number;
}

export interface SourceFigures {
  /** Non-test .ts files scanned (`*.test.ts`, `*.d.ts` and `test/` folders excluded). */
  files: number;
  /** Files over `maxLines` lines, longest first. */
  longFiles: LongFile[];
  longest: LongFile | undefined;
  /**
   * Import cycles: strongly connected components (more than one file, or a
   * file importing itself) of the relative-import graph, each as its files
   * (repo-relative). `cycles` counts every edge, `import type` included (a
   * design cycle); `runtimeCycles` leaves type-only statements out (what
   * the ESM loader actually walks).
   */
  cycles: string[][];
  runtimeCycles: string[][];
}

/** Lines of a file as an editor numbers them (a final newline does not start a line). */
function lineCount(text: string): number {
  if (text.length === 0) return 0;
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n - 1 : n;
}

function walk(dir: string, out: string[]): void {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'test' || name === '__tests__') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts') && !/\.(test|spec)\.ts$/.test(name)) out.push(p);
  }
}

/** Every non-test .ts under `<root>/<package>/src` (packages: the folders of root holding a src/). */
export function sourceFiles(root: string): string[] {
  const files: string[] = [];
  for (const pkg of readdirSync(root)) {
    if (pkg === 'node_modules' || pkg.startsWith('.')) continue;
    const src = join(root, pkg, 'src');
    if (existsSync(src) && statSync(src).isDirectory()) walk(src, files);
  }
  return files.sort();
}

// `import x from '…'`, `import type {…} from '…'`, `export * from '…'`, `export {…} from '…'`, `import '…'`.
// The clause may span lines but holds no quote or semicolon (so one statement's match cannot run into the
// next); the statement must start a line so that strings in code are not taken.
const IMPORT_RE = /^\s*(import|export)(\s+type)?\s+(?:[^;'"]*?\sfrom\s+)?['"]([^'"]+)['"]/gm;

interface Edge {
  to: string;
  typeOnly: boolean;
}

function edgesOf(file: string, known: Set<string>): Edge[] {
  const text = readFileSync(file, 'utf8');
  const edges: Edge[] = [];
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[3]!;
    if (!spec.startsWith('.')) continue;
    const target = resolveTs(resolve(dirname(file), spec), known);
    if (target) edges.push({ to: target, typeOnly: m[2] !== undefined });
  }
  return edges;
}

/** './x.js' → x.ts, './x' → x.ts or x/index.ts, among the scanned files. */
function resolveTs(base: string, known: Set<string>): string | undefined {
  const noJs = base.replace(/\.(js|mjs|ts)$/, '');
  for (const c of [noJs + '.ts', join(noJs, 'index.ts')]) if (known.has(c)) return c;
  return undefined;
}

/** Tarjan's strongly connected components; returns the cyclic ones. */
function cyclicComponents(nodes: string[], next: (n: string) => string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let counter = 0;
  // Iterative, so a deep import chain cannot overflow the call stack.
  for (const start of nodes) {
    if (index.has(start)) continue;
    const work: Array<{ n: string; i: number; succ: string[] }> = [];
    const enter = (n: string): void => {
      index.set(n, counter);
      low.set(n, counter++);
      stack.push(n);
      onStack.add(n);
      work.push({ n, i: 0, succ: next(n) });
    };
    enter(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      if (top.i < top.succ.length) {
        const s = top.succ[top.i++]!;
        if (!index.has(s)) enter(s);
        else if (onStack.has(s)) low.set(top.n, Math.min(low.get(top.n)!, index.get(s)!));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.n;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.n)!));
      }
      if (low.get(top.n) === index.get(top.n)) {
        const comp: string[] = [];
        let x: string;
        do {
          x = stack.pop()!;
          onStack.delete(x);
          comp.push(x);
        } while (x !== top.n);
        if (comp.length > 1 || next(top.n).includes(top.n)) out.push(comp.sort());
      }
    }
  }
  return out;
}

/** Scans `<root>/*\/src`. `maxLines`: the bound a file may not exceed (the issue's 500). */
export function scanSource(root: string, maxLines: number): SourceFigures {
  const files = sourceFiles(root);
  const known = new Set(files);
  const lines: LongFile[] = files.map((f) => ({ file: relative(root, f), lines: lineCount(readFileSync(f, 'utf8')) }));
  lines.sort((a, b) => b.lines - a.lines);
  const edges = new Map(files.map((f) => [f, edgesOf(f, known)]));
  const all = (n: string): string[] => [...new Set(edges.get(n)!.map((e) => e.to))];
  const runtime = (n: string): string[] => [...new Set(edges.get(n)!.filter((e) => !e.typeOnly).map((e) => e.to))];
  const rel = (cs: string[][]): string[][] => cs.map((c) => c.map((f) => relative(root, f))).sort((a, b) => b.length - a.length);
  return {
    files: files.length,
    longFiles: lines.filter((l) => l.lines > maxLines),
    longest: lines[0],
    cycles: rel(cyclicComponents(files, all)),
    runtimeCycles: rel(cyclicComponents(files, runtime)),
  };
}

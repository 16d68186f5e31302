/**
 * Figures of loading code: `import('@meshbus/core')` time in a fresh
 * process, and the browser ESM bundle size the SDK build reports.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Checkout } from './node-process.js';

// Timed inside the child, around the import alone: Node's own boot (~40 ms) is not the package's cost.
// CPU: process.cpuUsage() over the same span (user + system, all threads of the process).
const TIMER =
  "const c=process.cpuUsage(),t=performance.now();await import(process.argv[1]);const w=performance.now()-t,u=process.cpuUsage(c);process.stdout.write(w+' '+(u.user+u.system)/1000)";

/**
 * Milliseconds `await import(spec)` takes in a fresh `node` process started
 * in `<root>/<dir>` (so bare specifiers resolve as that package's code
 * resolves them): wall, and CPU of the process over the same span. Throws
 * when the import fails.
 */
export function importOnce(co: Checkout, spec: string, dir = 'core'): Promise<{ wall: number; cpu: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', TIMER, spec], { cwd: join(co.root, dir), timeout: 30_000 }, (err, stdout, stderr) => {
      const [wall, cpu] = stdout.split(' ').map(Number);
      if (err || !Number.isFinite(wall) || !Number.isFinite(cpu)) reject(new Error(`${co.label}: import('${spec}') failed: ${(err?.message ?? '') + stderr}`.trim()));
      else resolve({ wall: wall!, cpu: cpu! });
    });
  });
}

export interface BundleFigure {
  /** gzip -9 bytes of dist-browser/meshbus.esm.js, as the SDK's build-browser script reports it. */
  gzip: number;
  minified: number;
  brotli?: number;
  /** The SDK build's own goal (gzip bytes), when sizes.json states one. */
  goal?: number;
  /** 'read' from an up-to-date sizes.json, 'built' when the script ran build:browser first. */
  source: 'read' | 'built';
}

function newestMtime(dir: string): number {
  let t = 0;
  if (!existsSync(dir)) return t;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newestMtime(p) : st.mtimeMs);
  }
  return t;
}

/**
 * Reads `<root>/sdk/dist-browser/sizes.json` (written by `npm run -w
 * @meshbus/sdk build:browser`); runs that build first when the file is
 * missing or older than a file of sdk/src or proto/src (a stale figure
 * would be wrong). undefined when the checkout has no such build.
 */
export function bundleSize(co: Checkout, log: (s: string) => void): BundleFigure | undefined {
  const file = join(co.root, 'sdk', 'dist-browser', 'sizes.json');
  const script = join(co.root, 'sdk', 'scripts', 'build-browser.mjs');
  let source: BundleFigure['source'] = 'read';
  const stale = !existsSync(file) || statSync(file).mtimeMs < Math.max(newestMtime(join(co.root, 'sdk', 'src')), newestMtime(join(co.root, 'proto', 'src')));
  if (stale) {
    if (!existsSync(script)) return undefined;
    log(`  ${co.label}: sizes.json missing or older than the sources: running build:browser`);
    // Over budget exits 1 but still writes sizes.json: the figure is what counts here.
    try {
      execFileSync(process.execPath, [script], { cwd: join(co.root, 'sdk'), stdio: 'ignore', timeout: 120_000 });
    } catch {
      /* read what it wrote */
    }
    source = 'built';
  }
  if (!existsSync(file)) return undefined;
  const j = JSON.parse(readFileSync(file, 'utf8')) as { goal?: number; sizes?: Record<string, { minified: number; gzip: number; brotli?: number }> };
  const esm = j.sizes?.['meshbus.esm.js'];
  if (!esm) return undefined;
  return { gzip: esm.gzip, minified: esm.minified, brotli: esm.brotli, goal: j.goal, source };
}

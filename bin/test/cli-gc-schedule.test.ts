import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, expect, it } from 'vitest';
import { MESHBUS_BIN, loggedField, spawnCli, trackedProcesses, untilProcess, type CliProcess } from '@meshbus/testkit';
import { nextGcState, operatorGcFlags } from '../src/gc-schedule.js';

/**
 * `meshbus start` holds V8's incremental marking off while its heap is small
 * and it is busy (gc-schedule.ts; bench/README "Major GCs on a small heap":
 * 45-84 mark-compacts in a run at 4 KiB across two nodes before), gives V8
 * its own schedule back on a large heap and while idle, and leaves an
 * operator's GC flags alone.
 */

const procs = trackedProcesses();
afterEach(() => procs.stop());

const SCHEDULE = pathToFileURL(join(dirname(MESHBUS_BIN), 'dist', 'gc-schedule.js')).href;
const MiB = 1024 * 1024;

const said = (p: CliProcess): string[] => loggedField(p, 'V8 GC schedule', 'incrementalMarking');

const START = ['start', '--port', '0', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'debug'];

function nodeWith(nodeArgs: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  return procs.track(spawnCli(START, { nodeArgs, env }));
}

it('start holds incremental marking on its small heap; each worker of --workers too', async () => {
  const p = procs.track(spawnCli(START));
  await untilProcess(p, () => p.err().includes('node listening') && said(p).length > 0, 'the node to listen');
  expect(said(p)[0]).toBe('held');
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);

  const w = procs.track(spawnCli([...START, '--workers', '2']));
  await untilProcess(w, () => said(w).length >= 2, 'both workers to start');
  expect(said(w).slice(0, 2)).toEqual(['held', 'held']);
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
});

it("start leaves V8's schedule to an operator who set a GC flag, on node's command line or in NODE_OPTIONS", async () => {
  for (const p of [nodeWith(['--initial-old-space-size=64']), nodeWith([], { NODE_OPTIONS: '--max-semi-space-size=8' })]) {
    await untilProcess(p, () => said(p).length === 1, 'the node to say its GC schedule');
    expect(said(p)).toEqual(['operator flags']);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  }
});

it("operatorGcFlags: V8's spellings of a GC schedule flag, not other flags", () => {
  for (const f of ['--no-incremental-marking', '--noincremental-marking', '--incremental_marking', '--no_incremental_marking', '--initial_old_space_size=64', '--incremental-marking-hard-trigger=50', '--initial-heap-size=128', '--initial-old-space-size=64', '--max-semi-space-size=8', '--single-threaded-gc', '--gc-interval=100', '--no-memory-reducer']) {
    expect(operatorGcFlags([f]), f).toBe(true);
  }
  for (const f of ['--max-old-space-size=512', '--expose-gc', '--enable-source-maps', '--import=x.js']) expect(operatorGcFlags([f]), f).toBe(false);
});

it('nextGcState: held below the release size while busy; V8 at or above it and while idle; 48-64 MiB keeps the state it has', () => {
  const at = (now: 'held' | 'v8', mib: number, idle = false): string => nextGcState(now, mib * MiB, idle, 64 * MiB, 48 * MiB);
  expect(at('v8', 10)).toBe('held');
  expect(at('held', 63)).toBe('held');
  expect(at('held', 64)).toBe('v8');
  expect(at('v8', 50)).toBe('v8');
  expect(at('v8', 47)).toBe('held');
  expect(at('held', 10, true)).toBe('v8');
});

/** Runs `script` (an ES module; SCHEDULE imported as `gc`) in a fresh node process and parses the JSON it prints last. */
async function inProcess<T>(script: string): Promise<T> {
  const code = `import * as gc from ${JSON.stringify(SCHEDULE)};\nimport { PerformanceObserver, constants } from 'node:perf_hooks';\n${script}`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', code], { timeout: 25_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}

// Old-generation churn on a small heap (objects kept long enough to be promoted, then dropped): under
// V8's schedule its mark-compacts are incremental ones; held (never released here), they run without.
const CHURN = (hold: boolean): string => `
if (${hold}) gc.holdIncrementalMarking({ releaseAtBytes: Infinity, idleWindowMs: 3_600_000 });
const c = { incremental: 0, major: 0 };
new PerformanceObserver((l) => { for (const e of l.getEntries()) {
  if (e.detail.kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) c.incremental++;
  if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) c.major++;
} }).observe({ entryTypes: ['gc'] });
let keep = [];
for (let round = 0; round < 40; round++) {
  for (let i = 0; i < 20000; i++) keep.push({ a: i, b: 'x' + i, c: [i] });
  if (keep.length > 100000) keep = keep.slice(50000);
  await new Promise((r) => setImmediate(r));
}
setTimeout(() => console.log(JSON.stringify(c)), 20);
`;

it('held, a small heap is collected without incremental marking; under V8 schedule with it', async () => {
  const held = await inProcess<{ incremental: number; major: number }>(CHURN(true));
  expect(held.major).toBeGreaterThan(0);
  expect(held.incremental).toBe(0);
  const v8 = await inProcess<{ incremental: number; major: number }>(CHURN(false));
  expect(v8.major).toBeGreaterThan(0);
  expect(v8.incremental).toBeGreaterThan(0);
});

it('held schedules go back to V8 when a mark-compact leaves the old generation at the release size, and while idle; busy again, held again', async () => {
  const changes = await inProcess<string[]>(`
const changes = [];
const s = gc.holdIncrementalMarking({ releaseAtBytes: 24 * 1024 * 1024, idleWindowMs: 1000, onChange: (state, why) => changes.push(state + ': ' + why.split(' ')[0]) });
const wait = (ms) => new Promise((r) => setTimeout(r, ms));
// 1. A live old generation over 24 MiB: released at the next mark-compact.
const live = [];
for (let i = 0; i < 400 && s.state === 'held'; i++) {
  for (let j = 0; j < 5000; j++) live.push({ i, j, s: 'v' + j });
  await new Promise((r) => setImmediate(r));
}
live.length = 0;
// 2. Dropped, then objects kept long enough to be promoted: a mark-compact finds the old generation small (held).
let keep = [];
for (let i = 0; i < 2000 && s.state !== 'held'; i++) {
  for (let j = 0; j < 20000; j++) keep.push({ j, s: 'x' + j });
  if (keep.length > 100000) keep = keep.slice(50000);
  await new Promise((r) => setImmediate(r));
}
keep = [];
// 3. Nothing to do: idle, V8 again.
for (let i = 0; i < 250 && s.state === 'held'; i++) await wait(20);
// 4. Busy again: held again.
for (let i = 0; i < 400 && s.state !== 'held'; i++) {
  for (let j = 0; j < 50000; j++) keep.push({ j });
  keep = [];
  await new Promise((r) => setImmediate(r));
}
s.release();
console.log(JSON.stringify(changes));
`);
  expect(changes).toEqual(['held: start', 'v8: old', 'held: old', 'v8: idle', 'held: busy', 'v8: released']);
});

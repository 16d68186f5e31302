import { afterEach, expect, it } from 'vitest';
import { RawClient, loggedField, spawnCli, trackedProcesses, untilProcess, type CliProcess } from '@meshbus/testkit';
import { flagName } from '../src/node-flags.js';
import { holdStartupTiering, operatorCompilerFlags, startupTieringHeld } from '../src/startup-tiering.js';

/**
 * `meshbus start` keeps V8's optimizing compiler (TurboFan) off while it loads
 * and starts its node, and on from then (startup-tiering.ts): before, module
 * resolution made ~10 functions hot enough to be compiled during start-up, and
 * TurboFan's own code stayed mapped in the idle node (issue #15: idle RSS
 * 61.5 → 55.8 MB). `--trace-opt` makes V8 print each optimization on stdout.
 */

const procs = trackedProcesses();
afterEach(() => procs.stop());

const START = ['start', '--port', '0', '--http-port', 'off', '--ws-port', 'off'];
const OPTIMIZED = /completed optimizing/g;
const optimized = (p: CliProcess): number => p.out().match(OPTIMIZED)?.length ?? 0;

async function listening(p: CliProcess): Promise<number> {
  await untilProcess(p, () => loggedField(p, 'node listening', 'port').length > 0, 'the node to listen');
  return Number(loggedField(p, 'node listening', 'port')[0]);
}

/** Publishes `rounds` × 2,000 small events through the node at `port` (a subscriber takes them). */
async function traffic(port: number, rounds: number, until: () => boolean = () => false): Promise<void> {
  const sub = await RawClient.connect(port);
  const pub = await RawClient.connect(port);
  try {
    sub.sub('hot.>', 1);
    await sub.flush();
    for (let round = 0; round < rounds && !until(); round++) {
      for (let i = 0; i < 2000; i++) pub.pub(`hot.${i % 16}`, 'x');
      await pub.flush(10_000);
    }
  } finally {
    sub.close();
    pub.close();
  }
}

it('start optimizes nothing while it starts, then what runs hot once it serves', async () => {
  const p = procs.track(spawnCli(START, { nodeArgs: ['--trace-opt'] }));
  const port = await listening(p);
  // A compile started during start-up would finish on V8's thread within ms: give it time to show.
  await new Promise((r) => setTimeout(r, 500));
  expect(optimized(p), p.out().slice(0, 2000)).toBe(0);

  // Enough traffic for the node's read, route and write paths to be compiled.
  await traffic(port, 50, () => optimized(p) > 0);
  expect(optimized(p)).toBeGreaterThan(0);
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
});

it("an operator's compiler flag is left alone: --opt optimizes during start-up as V8 would, --no_opt never (V8's underscore spelling)", async () => {
  const p = procs.track(spawnCli(START, { nodeArgs: ['--trace-opt', '--opt'] }));
  await listening(p);
  await untilProcess(p, () => optimized(p) > 0, 'V8 to optimize start-up code');
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);

  // Before, `--no_opt` was not seen as the operator's: start-up's hold ended with TurboFan turned on.
  const q = procs.track(spawnCli(START, { nodeArgs: ['--trace-opt', '--no_opt'] }));
  await traffic(await listening(q), 20);
  expect(optimized(q)).toBe(0);
  q.child.kill('SIGTERM');
  expect(await q.exited).toBe(0);
});

it('holdStartupTiering holds for `start` only, and never against an operator flag', async () => {
  expect(await holdStartupTiering(['pub', 'a.b', 'x'], [])).toBe(false);
  expect(await holdStartupTiering(['start'], ['--no_turbofan'])).toBe(false);
  expect(startupTieringHeld()).toBe(false);
});

it("operatorCompilerFlags: V8's spellings of a compiler flag, not tracing or other flags", () => {
  for (const f of ['--opt', '--no-opt', '--noopt', '--no_opt', '--turbofan', '--no-turbofan', '--no_turbofan', '--jitless', '--lite-mode', '--max-opt=1', '--max_opt=0', '--maglev', '--no-sparkplug', '--always-opt', '--always_turbofan']) {
    expect(operatorCompilerFlags([f]), f).toBe(true);
  }
  for (const f of ['--trace-opt', '--trace_opt', '--max-old-space-size=512', '--optimize-for-size', '--expose-gc', '--import=x.js']) expect(operatorCompilerFlags([f]), f).toBe(false);
  expect(flagName('--max_old_space_size=a_b')).toBe('--max-old-space-size=a_b');
});

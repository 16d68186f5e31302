import { afterEach, expect, it } from 'vitest';
import { RawClient, loggedField, spawnCli, trackedProcesses, untilProcess, type CliProcess } from '@meshbus/testkit';
import { operatorCompilerFlags } from '../src/startup-tiering.js';

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

it('start optimizes nothing while it starts, then what runs hot once it serves', async () => {
  const p = procs.track(spawnCli(START, { nodeArgs: ['--trace-opt'] }));
  const port = await listening(p);
  // A compile started during start-up would finish on V8's thread within ms: give it time to show.
  await new Promise((r) => setTimeout(r, 500));
  expect(optimized(p), p.out().slice(0, 2000)).toBe(0);

  const sub = await RawClient.connect(port);
  const pub = await RawClient.connect(port);
  try {
    sub.sub('hot.>', 1);
    await sub.flush();
    // Enough traffic for the node's read, route and write paths to be compiled.
    for (let round = 0; round < 50 && optimized(p) === 0; round++) {
      for (let i = 0; i < 2000; i++) pub.pub(`hot.${i % 16}`, 'x');
      await pub.flush(10_000);
    }
    expect(optimized(p)).toBeGreaterThan(0);
  } finally {
    sub.close();
    pub.close();
  }
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
});

it("an operator's compiler flag is left alone: --opt on node's command line optimizes during start-up as V8 would", async () => {
  const p = procs.track(spawnCli(START, { nodeArgs: ['--trace-opt', '--opt'] }));
  await listening(p);
  await untilProcess(p, () => optimized(p) > 0, 'V8 to optimize start-up code');
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
});

it("operatorCompilerFlags: V8's spellings of a compiler flag, not tracing or other flags", () => {
  for (const f of ['--opt', '--no-opt', '--noopt', '--turbofan', '--no-turbofan', '--jitless', '--maglev', '--no-sparkplug', '--always-opt', '--always_turbofan']) {
    expect(operatorCompilerFlags([f]), f).toBe(true);
  }
  for (const f of ['--trace-opt', '--max-old-space-size=512', '--optimize-for-size', '--expose-gc', '--import=x.js']) expect(operatorCompilerFlags([f]), f).toBe(false);
});

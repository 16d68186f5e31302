import { afterEach, expect, it } from 'vitest';
import { loggedField, spawnCli, trackedProcesses, untilProcess, type CliProcess } from '@meshbus/testkit';
import { nativeOps } from '@meshbus/native';

/**
 * `meshbus start` sets glibc's M_TOP_PAD for its own process (native
 * tuneAllocator; bench/README "Page faults and the C allocator"), and leaves
 * it alone when the operator set glibc's malloc in the environment. Each
 * worker of `--workers` is a process of its own: each sets it.
 */

const procs = trackedProcesses();
afterEach(() => procs.stop());

const glibc = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;
const expected = !nativeOps ? 'native addon not loaded' : glibc ? 'applied' : 'not glibc';

const said = (p: CliProcess): string[] => loggedField(p, 'C allocator', 'allocator');

const start = (extra: string[], env?: NodeJS.ProcessEnv): CliProcess =>
  procs.track(spawnCli(['start', '--port', '0', '--http-port', 'off', '--ws-port', 'off', '--log-level', 'debug', ...extra], { env }));

it(`start tunes its allocator: ${expected}`, async () => {
  const p = start([]);
  await untilProcess(p, () => p.err().includes('node listening'), 'the node to listen');
  expect(said(p)).toEqual([expected]);
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
});

it('start leaves it to the operator who set MALLOC_TOP_PAD_, and every worker of --workers says so', async () => {
  const p = start(['--workers', '2'], { MALLOC_TOP_PAD_: '262144' });
  await untilProcess(p, () => said(p).length === 2, 'both workers to start');
  expect(said(p)).toEqual(['set by the operator', 'set by the operator']);
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
});

import { afterEach, expect, it } from 'vitest';
import { connect } from '@meshbus/sdk';
import { spawnNode, type NodeProcess } from './processes.js';
import { until } from './mesh-helpers.js';

/**
 * Issue #13: a promise rejection nobody handled exited `meshbus start` with
 * code 1. The process now logs it with the node logger and keeps serving.
 * The probe (loaded with --import) makes an unhandled rejection on SIGUSR2,
 * standing in for any such bug.
 */

const PROBE = `data:text/javascript,process.on('SIGUSR2', () => { Promise.reject(new Error('probe rejection')); });`;

const procs: NodeProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null) p.child.kill('SIGTERM');
    await p.exited;
  }
});

it('meshbus start logs an unhandled rejection and keeps running', async () => {
  const p = await spawnNode({ clusterPort: null, readyText: 'node listening', nodeArgs: ['--import', PROBE] });
  procs.push(p);
  p.child.kill('SIGUSR2');
  await until(() => p.log.join('').includes('probe rejection'), 'the rejection logged');
  const line = p.log.join('').split('\n').find((l) => l.includes('probe rejection'))!;
  expect(JSON.parse(line)).toMatchObject({ level: 'error', msg: expect.stringContaining('unhandled promise rejection') });
  // still serving: a client connects and round-trips
  const c = await connect(p.url);
  try {
    await c.flush();
    expect(p.child.exitCode).toBeNull();
  } finally {
    await c.close();
  }
});

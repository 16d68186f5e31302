import { expect, it } from 'vitest';
import { connect } from '@meshbus/sdk';
import { nodeKit, until } from '@meshbus/testkit';

/**
 * Issue #13: a promise rejection nobody handled exited `meshbus start` with
 * code 1. The process now logs it with the node logger and keeps serving.
 * The probe (loaded with --import) makes an unhandled rejection on SIGUSR2,
 * standing in for any such bug.
 */

// The second reason has no toString: String() throws on it (before, inside the guard, which then crashed the process).
const PROBE = `data:text/javascript,process.on('SIGUSR2', () => { Promise.reject(new Error('probe rejection')); Promise.reject(Object.create(null)); });`;

const fx = nodeKit();

it('meshbus start logs an unhandled rejection and keeps running, also one whose reason String() cannot print', async () => {
  const p = await fx.spawnNode({ clusterPort: null, readyText: 'node listening', nodeArgs: ['--import', PROBE] });
  p.child.kill('SIGUSR2');
  await until(() => p.log.join('').includes('probe rejection') && p.log.join('').includes('[object Object]'), 'both rejections logged');
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

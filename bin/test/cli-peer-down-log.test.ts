import { afterEach, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { spawnCli, stopProcesses, until, type CliProcess } from '@meshbus/testkit';

/**
 * Issue 16: a peer going down is logged at the default level of `meshbus
 * dev` (warn), in the one log format (pino JSON lines on stderr), naming the
 * peer. Two real `meshbus start` processes at --log-level warn; one is killed.
 */

const procs: CliProcess[] = [];
afterEach(async () => {
  await stopProcesses(procs);
});

async function peersUp(httpPort: number): Promise<boolean> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    return /^meshbus_connections\{kind="peer"\} 1$/m.test(text);
  } catch {
    return false;
  }
}

it('a node at the dev default level (warn) logs a peer link going down, naming the peer', async () => {
  const [a, b] = [await freePort(), await freePort()];
  const [ca, cb] = [await freePort(), await freePort()];
  const [ha, hb] = [await freePort(), await freePort()];
  const common = ['--ws-port', 'off', '--log-level', 'warn', '--cluster-secret', 'a-dev-secret-of-some-length'];
  const na = spawnCli(['start', '--name', 'alpha', '--port', String(a), '--cluster-port', String(ca), '--http-port', String(ha), ...common]);
  procs.push(na);
  const nb = spawnCli(['start', '--name', 'beta', '--port', String(b), '--cluster-port', String(cb), '--http-port', String(hb), '--seeds', `127.0.0.1:${ca}`, ...common]);
  procs.push(nb);
  await until(async () => (await peersUp(ha)) && (await peersUp(hb)), 'the two nodes to link');
  nb.child.kill('SIGKILL');
  await nb.exited;
  await until(() => na.err().includes('peer link down'), 'the peer link down line');
  const line = na.err().split('\n').find((l) => l.includes('peer link down'))!;
  expect(JSON.parse(line)).toMatchObject({ level: 'warn', name: 'alpha', peerName: 'beta', address: `127.0.0.1:${cb}`, msg: 'peer link down' });
});

import { createServer, connect as netConnect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { freePortRange, portFree, runCli, spawnCli, spawnCliOnFreePorts, trackedProcesses, until, untilProcess, type CliProcess } from '@meshbus/testkit';

/**
 * Issue #16: the documented ways to run a node drain on SIGTERM and exit 0
 * with their ports free; `meshbus start --workers` whose client port is taken
 * exits non-zero; `meshbus dev` takes its peer ports from --cluster-base.
 * Real processes throughout.
 */

const { track, stop } = trackedProcesses();
afterEach(() => stop({ group: true }));

/**
 * `meshbus dev --nodes n` on port bases of the test's choosing, once its nodes
 * have linked (n × (n - 1) "peer link up" lines); chosen again when one was
 * taken before dev bound it (spawnCliOnFreePorts).
 */
async function devMesh(n: number, spawn?: { env?: NodeJS.ProcessEnv; viaShell?: boolean; group?: boolean }): Promise<{ d: CliProcess; base: number; cluster: number; http: number; ws: number }> {
  const { p, ports } = await spawnCliOnFreePorts({
    pick: async () => ({ base: await freePortRange(n), cluster: await freePortRange(n), http: await freePortRange(n), ws: await freePortRange(n) }),
    args: ({ base, cluster, http, ws }) => ['dev', '--nodes', String(n), '--base-port', String(base), '--cluster-base', String(cluster), '--http-base', String(http), '--ws-base', String(ws), '--log-level', 'info'],
    ready: (d) => (d.err().match(/peer link up/g) ?? []).length >= n * (n - 1),
    what: `the ${n} dev nodes to link`,
    track,
    spawn,
  });
  return { d: p, ...ports };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function nodePorts(): Promise<string[]> {
  return ['--port', String(await freePort()), '--http-port', String(await freePort()), '--ws-port', String(await freePort())];
}

function portsOf(args: string[]): number[] {
  return ['--port', '--http-port', '--ws-port'].map((f) => Number(args[args.indexOf(f) + 1]));
}

it('node bin/meshbus.js start drains on SIGTERM, exits 0 and frees its ports', async () => {
  const args = await nodePorts();
  const p = track(spawnCli(['start', ...args, '--log-level', 'info']));
  await until(async () => (await Promise.all(portsOf(args).map(accepts))).every(Boolean), 'the node to listen on every port');
  p.child.kill('SIGTERM');
  expect(await p.exited).toBe(0);
  expect(p.err()).toContain('"signal":"SIGTERM"');
  for (const port of portsOf(args)) expect(await portFree(port), `port ${port} free`).toBe(true);
});

it('under npm (npx meshbus start), SIGTERM to the launcher still drains the node and frees its ports', async () => {
  // npm forwards SIGTERM to the `sh -c` it runs the bin in; sh dies of it without
  // passing it on. Before, the node lived on, orphaned, holding its ports.
  const args = await nodePorts();
  const p = track(spawnCli(['start', ...args, '--log-level', 'info'], { viaShell: true, env: { npm_command: 'exec' } }));
  await until(async () => (await Promise.all(portsOf(args).map(accepts))).every(Boolean), 'the node to listen on every port');
  p.child.kill('SIGTERM');
  await p.exited;
  await untilProcess(p, async () => (await Promise.all(portsOf(args).map(portFree))).every(Boolean), 'the orphaned node to free its ports');
  expect(p.err()).toContain('launcher exited');
  // Ports are freed when the drain starts, 'node stopped' is logged when it ends (and the pipe may lag): wait for it.
  await untilProcess(p, () => p.err().includes('node stopped'), 'the orphaned node to log that it stopped');
});

it('under npm, a launcher killed while the node is still opening its ports drains the node too', async () => {
  // The node used to note its launcher only once every port was open: a signal
  // that came earlier left it re-parented, waiting for a change already past.
  const args = await nodePorts();
  const p = track(spawnCli(['start', ...args, '--log-level', 'info'], { viaShell: true, env: { npm_command: 'exec' } }));
  await until(() => accepts(portsOf(args)[0]!), 'the node to listen on its client port', 20_000, 5);
  p.child.kill('SIGTERM');
  await p.exited;
  await untilProcess(p, async () => (await Promise.all(portsOf(args).map(portFree))).every(Boolean), 'the orphaned node to free its ports');
  // Ports are freed when the drain starts, 'node stopped' is logged when it ends (and the pipe may lag): wait for it.
  await untilProcess(p, () => p.err().includes('node stopped'), 'the orphaned node to log that it stopped');
});

it('under npm, SIGTERM to the launcher of start --workers or dev stops every node', async () => {
  const port = await freePort();
  const w = track(
    spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info'], { viaShell: true, env: { npm_command: 'exec' } }),
  );
  await untilProcess(w, () => (w.err().match(/peer link up/g) ?? []).length >= 2, 'the workers to link');
  w.child.kill('SIGTERM');
  await w.exited;
  await untilProcess(w, () => portFree(port), 'the orphaned workers to free the client port');

  const { d, base, cluster } = await devMesh(2, { viaShell: true, env: { npm_command: 'exec' } });
  d.child.kill('SIGTERM');
  await d.exited;
  await untilProcess(d, async () => (await Promise.all([base, base + 1, cluster, cluster + 1].map(portFree))).every(Boolean), 'the orphaned dev mesh to free its ports');
});

it('start --workers exits non-zero when the client port is taken, instead of living on serving nothing', async () => {
  const args = await nodePorts();
  const holder = track(spawnCli(['start', ...args, '--log-level', 'warn']));
  await until(() => accepts(portsOf(args)[0]!), 'the first node to hold the port');
  const w = track(spawnCli(['start', '--workers', '2', '--port', args[1]!, '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn']));
  expect(await w.exited).toBe(1);
  expect(w.err()).toContain('already in use');
  expect(w.err()).toContain('worker failed to start');
  holder.child.kill('SIGTERM');
  expect(await holder.exited).toBe(0);
});

it('start --workers drains every worker on SIGTERM and exits 0', async () => {
  const port = await freePort();
  const w = track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info']));
  await untilProcess(w, () => (w.err().match(/peer link up/g) ?? []).length >= 2, 'the workers to link');
  w.child.kill('SIGTERM');
  expect(await w.exited).toBe(0);
  expect(await portFree(port)).toBe(true);
});

it('dev takes its peer ports from --cluster-base, and stops every node on SIGTERM (exit 0)', async () => {
  const { d, base, cluster } = await devMesh(2);
  expect(d.out()).toContain(`peers 127.0.0.1:${cluster}`);
  expect(d.out()).toContain(`peers 127.0.0.1:${cluster + 1}`);
  expect(await accepts(cluster)).toBe(true);
  expect(await accepts(cluster + 1)).toBe(true);
  d.child.kill('SIGTERM');
  expect(await d.exited).toBe(0);
  for (const port of [base, base + 1, cluster, cluster + 1]) expect(await portFree(port), `port ${port} free`).toBe(true);
});

it('dev stops every node and exits 1 when one of them cannot start (its client port is taken)', async () => {
  const [base, cluster, http, ws] = [await freePortRange(2), await freePortRange(2), await freePortRange(2), await freePortRange(2)];
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(base + 1, '127.0.0.1', () => r()));
  try {
    const d = track(spawnCli(['dev', '--nodes', '2', '--base-port', String(base), '--cluster-base', String(cluster), '--http-base', String(http), '--ws-base', String(ws), '--log-level', 'warn']));
    expect(await d.exited).toBe(1);
    expect(d.err()).toContain('already in use');
    // The launcher says which node ended the mesh, in the nodes' own log line.
    const line = d.err().split('\n').find((l) => l.includes('a dev node exited'));
    expect(JSON.parse(line!)).toMatchObject({ level: 'error', role: 'dev', name: 'dev-1', nodePid: expect.any(Number), code: 1 });
    for (const port of [base, cluster, cluster + 1]) expect(await portFree(port), `port ${port} free`).toBe(true);
  } finally {
    await new Promise<void>((r) => blocker.close(() => r()));
  }
});

it('dev: a node killed from outside (kill -9 <pid> from the banner) leaves the others routing; SIGTERM then stops them (exit 0)', async () => {
  // Found by a newcomer doing what the README promises ("die without stopping the rest") with
  // the README's own 3-node dev mesh: killing one node stopped the whole mesh.
  const { d, base, cluster } = await devMesh(3);
  const pid = Number(/dev-1: pid (\d+)/.exec(d.out())?.[1]);
  expect(pid, d.out()).toBeGreaterThan(0);
  const sub = track(spawnCli(['sub', 'demo.>', '--count', '1', '--server', `127.0.0.1:${base + 2}`]));
  await untilProcess(sub, () => sub.err().includes('subscribed to demo.>'), 'the subscription on dev-2');
  process.kill(pid, 'SIGKILL');
  await untilProcess(d, () => d.err().split('\n').some((l) => l.includes('peer link down') && l.includes('"peerName":"dev-1"')), 'the others to see dev-1 gone');
  // dev-0 and dev-2 still up and linked: an event published on dev-0 reaches the sub on dev-2
  // (before, the launcher stopped them: the publish found no node, the sub lost its own).
  const pub = await runCli(['pub', 'demo.after', 'still routing', '--server', `127.0.0.1:${base}`]);
  expect(pub.code, pub.err).toBe(0);
  expect(await sub.exited, sub.err()).toBe(0);
  expect(sub.out()).toBe('[#1] demo.after: still routing\n');
  await untilProcess(d, () => d.err().includes('a dev node was stopped from outside'), 'the launcher to say so');
  expect(d.child.exitCode).toBe(null);
  const line = d.err().split('\n').find((l) => l.includes('a dev node was stopped from outside'));
  // The launcher's pid under `pid` (the field every line has), the node's under `nodePid`, its name
  // under `name`: a second `pid` key and a name under `node` (a node id elsewhere) made it ambiguous.
  expect(line!.match(/"pid":/g)).toHaveLength(1);
  expect(JSON.parse(line!)).toMatchObject({ level: 'warn', role: 'dev', pid: d.child.pid, name: 'dev-1', nodePid: pid, signal: 'SIGKILL' });
  expect(JSON.parse(line!)).not.toHaveProperty('node');
  d.child.kill('SIGTERM');
  expect(await d.exited).toBe(0);
  for (const port of [base, base + 2, cluster, cluster + 2]) expect(await portFree(port), `port ${port} free`).toBe(true);
});

it('dev signalled again while its nodes drain (a second Ctrl-C at the terminal) waits for them and exits 0', async () => {
  // 1dac576 made dev's handlers `on` (a second signal to a `once` launcher killed it by the signal's default
  // action, its nodes left draining as orphans) with no test of it; this one fails with `once` put back.
  const { d, base } = await devMesh(2, { group: true });
  // A connection that never closes its side keeps each node draining for its whole drainTimeout (5 s).
  const held = await Promise.all(
    [base, base + 1].map(
      (port) =>
        new Promise<ReturnType<typeof netConnect>>((r, j) => {
          const s = netConnect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => r(s)).once('error', j);
          s.resume();
        }),
    ),
  );
  try {
    process.kill(-d.child.pid!, 'SIGINT');
    await untilProcess(d, () => (d.err().match(/"msg":"node draining"/g) ?? []).length === 2, 'both nodes to drain');
    process.kill(-d.child.pid!, 'SIGINT');
    expect(await d.exited).toBe(0);
    expect((d.err().match(/"msg":"node stopped"/g) ?? []).length).toBe(2);
  } finally {
    for (const s of held) s.destroy();
  }
});

import { afterEach, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { freePortRange, portFree, runCli, spawnCli, spawnCliOnFreePorts, trackedProcesses, untilProcess, type CliProcess } from '@meshbus/testkit';

/**
 * SIGHUP (a configuration tool's "reload", a closed terminal) ended `meshbus
 * start` at once by its default action: exit 129, no drain, no line. meshbus
 * has no configuration reload, so every `start` process (a node, each
 * --workers worker, their primary) logs it and keeps serving; `dev`, an
 * interactive launcher whose nodes now ignore it, stops them as on Ctrl-C.
 * Real processes on loopback.
 */

const { track, stop } = trackedProcesses();
afterEach(() => stop({ group: true }));

const IGNORED = 'SIGHUP ignored: meshbus has no configuration reload; stop with SIGTERM';

function hangupLines(p: CliProcess): Array<Record<string, unknown>> {
  return p
    .err()
    .split('\n')
    .filter((l) => l.includes(IGNORED))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

it('start: SIGHUP is logged and ignored, the node keeps serving; SIGTERM then drains and exits 0', async () => {
  const [port, http] = [await freePort(), await freePort()];
  const p = track(spawnCli(['start', '--port', String(port), '--http-port', String(http), '--ws-port', 'off', '--log-level', 'info']));
  await untilProcess(p, async () => (await fetch(`http://127.0.0.1:${http}/healthz`).catch(() => undefined))?.status === 200, 'the node to serve');
  p.child.kill('SIGHUP');
  await untilProcess(p, () => hangupLines(p).length === 1, 'the node to log the SIGHUP');
  expect(hangupLines(p)[0]).toMatchObject({ level: 'warn', signal: 'SIGHUP' });
  expect(p.child.exitCode).toBeNull();
  expect((await fetch(`http://127.0.0.1:${http}/healthz`)).status).toBe(200);
  const pub = await runCli(['pub', 'hup.test', 'still here', '--server', `127.0.0.1:${port}`]);
  expect(pub.code, pub.err).toBe(0);
  p.child.kill('SIGTERM');
  expect(await p.exited, p.err()).toBe(0);
  expect(p.err()).toContain('"signal":"SIGTERM"');
  expect(p.err()).toContain('node stopped');
  expect(await portFree(port)).toBe(true);
});

it('start --workers: SIGHUP to the process group is logged by the primary and each worker; all keep running, SIGTERM stops them (exit 0)', async () => {
  const port = await freePort();
  const w = track(spawnCli(['start', '--workers', '2', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info'], { group: true }));
  await untilProcess(w, () => (w.err().match(/peer link up/g) ?? []).length >= 2, 'the workers to link');
  process.kill(-w.child.pid!, 'SIGHUP');
  await untilProcess(w, () => hangupLines(w).length === 3, 'the primary and both workers to log the SIGHUP');
  expect(hangupLines(w).filter((l) => l.role === 'primary')).toHaveLength(1);
  expect(new Set(hangupLines(w).map((l) => l.name)).size).toBe(3);
  expect(w.err()).not.toContain('worker exited');
  const pub = await runCli(['pub', 'hup.test', 'still here', '--server', `127.0.0.1:${port}`]);
  expect(pub.code, pub.err).toBe(0);
  w.child.kill('SIGTERM');
  expect(await w.exited, w.err()).toBe(0);
  expect(await portFree(port)).toBe(true);
});

it('dev: a hangup (its terminal closed) stops every node, which would otherwise live on orphaned (exit 0)', async () => {
  const { p: d, ports } = await spawnCliOnFreePorts({
    pick: async () => ({ base: await freePortRange(2), cluster: await freePortRange(2), http: await freePortRange(2), ws: await freePortRange(2) }),
    args: ({ base, cluster, http, ws }) => ['dev', '--nodes', '2', '--base-port', String(base), '--cluster-base', String(cluster), '--http-base', String(http), '--ws-base', String(ws), '--log-level', 'info'],
    ready: (p) => (p.err().match(/peer link up/g) ?? []).length >= 2,
    what: 'the 2 dev nodes to link',
    track,
    spawn: { group: true },
  });
  // What a terminal's hangup reaches: the launcher and its nodes, one process group.
  process.kill(-d.child.pid!, 'SIGHUP');
  expect(await d.exited, d.err()).toBe(0);
  expect((d.err().match(/"msg":"node stopped"/g) ?? []).length).toBe(2);
  for (const port of [ports.base, ports.base + 1, ports.cluster, ports.cluster + 1]) expect(await portFree(port), `port ${port} free`).toBe(true);
});

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePortRange, packagesIn, RawWs, RECORD_IMPORTS_HOOK, spawnCliOnFreePorts, trackedProcesses } from '@meshbus/testkit';

// Issue #15, start-up time: `meshbus start` loads only what a node runs. The
// client commands' code (and the SDK behind it), the dev launcher and, without
// --cluster-port, the cluster package are imported only when used. The node
// runs with the testkit's loader hook (RECORD_IMPORTS_HOOK), which records every module
// URL the ESM loader resolves.

const dir = mkdtempSync(join(tmpdir(), 'mb-cli-imports-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const procs = trackedProcesses();
afterEach(() => procs.stop());

/** The module URLs a `meshbus <args>` process resolved by the time `ready(log)` held on its log (stderr; then it is stopped with SIGTERM). */
async function modulesLoadedBy(n: number, argsOf: (port: number) => string[], ready: (out: string, port: number) => boolean): Promise<string[]> {
  const log = join(dir, `run-${Date.now()}-${Math.random().toString(36).slice(2)}.log`);
  const { p } = await spawnCliOnFreePorts({
    // Each try records into an empty log (ports taken before the node bound them: started again).
    pick: async () => (writeFileSync(log, ''), await freePortRange(n)),
    args: argsOf,
    ready: (q, port) => ready(q.err(), port),
    what: 'meshbus start to be ready',
    track: (q) => procs.track(q),
    spawn: { env: { NODE_OPTIONS: `--import ${RECORD_IMPORTS_HOOK}`, MB_IMPORT_LOG: log } },
  });
  p.child.kill('SIGTERM');
  await p.exited;
  return readFileSync(log, 'utf8').split('\n').filter(Boolean);
}

describe('what meshbus start loads', () => {
  it('a plain node loads neither the SDK, the client commands, the dev launcher, the cluster nor jose', async () => {
    const urls = await modulesLoadedBy(
      3,
      (port) => ['start', '--port', String(port), '--ws-port', String(port + 1), '--http-port', String(port + 2)],
      (out) => out.includes('"http api listening"'),
    );
    expect(urls.some((u) => u.includes('/core/dist/node.js'))).toBe(true); // the hook saw the node's modules
    const unwanted = urls.filter((u) => /\/sdk\/dist\/|\/cluster\/dist\/|\/node_modules\/jose\/|\/bin\/dist\/(client-commands|trace-command|token-command|dev)\.js/.test(u));
    expect(unwanted).toEqual([]);
  });

  it('a node with --ws-port off never loads ws; with the ws port on it does, at the first upgrade', async () => {
    let wsClient: RawWs | undefined;
    const off = await modulesLoadedBy(1, (port) => ['start', '--port', String(port), '--ws-port', 'off', '--http-port', 'off'], (out) => out.includes('"node listening"'));
    expect(off.some((u) => u.includes('/core/dist/node.js'))).toBe(true);
    expect([...packagesIn(off)]).not.toContain('ws');
    // With the ws port on, ws loads on the first WebSocket upgrade (not at start-up: issue #15 footprint).
    let upgraded = false;
    const on = await modulesLoadedBy(2, (port) => ['start', '--port', String(port), '--ws-port', String(port + 1), '--http-port', 'off'], (out, port) => {
      if (!out.includes('"ws gateway listening"')) return false;
      if (!upgraded) {
        upgraded = true;
        void RawWs.connect(`ws://127.0.0.1:${port + 1}`).then((c) => (wsClient = c), () => {});
      }
      return wsClient !== undefined;
    });
    wsClient?.close();
    expect([...packagesIn(on)]).toContain('ws');
  });

  it('a node with --cluster-port loads the cluster package', async () => {
    const urls = await modulesLoadedBy(
      4,
      (port) => ['start', '--port', String(port), '--ws-port', String(port + 1), '--http-port', String(port + 2), '--cluster-port', String(port + 3)],
      (out) => out.includes('"http api listening"'),
    );
    expect(urls.some((u) => u.includes('/cluster/dist/cluster-node.js'))).toBe(true);
    expect(urls.filter((u) => u.includes('/sdk/dist/'))).toEqual([]);
  });

  it('a plain node loads fastify, prom-client and the dashboard on the first HTTP request, not at start-up, and answers it', async () => {
    const log = join(dir, `run-lazy-http-${Date.now()}.log`);
    const { p, ports: port } = await spawnCliOnFreePorts({
      pick: async () => (writeFileSync(log, ''), await freePortRange(3)),
      args: (port) => ['start', '--port', String(port), '--ws-port', String(port + 1), '--http-port', String(port + 2)],
      ready: (q) => q.err().includes('"http api listening"'),
      what: 'meshbus start to be ready',
      track: (q) => procs.track(q),
      spawn: { env: { NODE_OPTIONS: `--import ${RECORD_IMPORTS_HOOK}`, MB_IMPORT_LOG: log } },
    });
    try {
      const loaded = (): string[] => readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const http = (urls: string[]): string[] => urls.filter((u) => /\/node_modules\/(fastify|prom-client)\/|\/core\/dist\/http\/(plugin\.js|http-server\.js|dashboard\/)/.test(u));
      expect(loaded().some((u) => u.includes('/core/dist/node.js'))).toBe(true);
      expect(http(loaded())).toEqual([]);
      const r = await fetch(`http://127.0.0.1:${port + 2}/healthz`);
      expect(r.status).toBe(200);
      expect([...packagesIn(loaded())]).toEqual(expect.arrayContaining(['fastify', 'prom-client']));
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });
});

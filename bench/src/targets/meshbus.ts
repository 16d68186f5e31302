/** meshbus: `meshbus start` processes (one, or two joined by cluster ports) and the @meshbus/sdk client. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@meshbus/sdk';
import { freePort, spawnServer, stopProcess, waitForPort } from '../proc.js';
import type { BenchClient, Target } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
/**
 * The `meshbus` command the nodes run: this checkout's (bench/{src,dist}/targets → repo root), or
 * MESHBUS_BENCH_BIN (another checkout's bin/meshbus.js: a before/after comparison under one harness).
 */
export const MESHBUS_BIN = process.env.MESHBUS_BENCH_BIN ?? join(here, '..', '..', '..', 'bin', 'meshbus.js');

/** URLs of already running nodes (npm run profile starts the node under clinic itself): host:port for TCP, and their WebSocket gateways as ws:// URLs. */
let external: string[] | undefined;
let externalWs: string[] | undefined;
export function useExternalMeshbus(urls: string[]): void {
  external = urls.filter((u) => !u.startsWith('ws://'));
  externalWs = urls.filter((u) => u.startsWith('ws://'));
}

export const meshbus: Target = {
  name: 'meshbus',
  async clusterSupport() {
    return external && external.length < 2 ? 'external node given' : true;
  },
  async unavailable() {
    if (external) return undefined;
    return existsSync(MESHBUS_BIN) ? undefined : `${MESHBUS_BIN} not found`;
  },
  async start(nodes) {
    if (external) return { urls: external.slice(0, nodes), wsUrls: externalWs?.slice(0, nodes), pids: [], note: 'external', stop: async () => {} };
    const ports = await Promise.all(Array.from({ length: nodes }, () => freePort()));
    const wports = await Promise.all(Array.from({ length: nodes }, () => freePort()));
    const cports = nodes > 1 ? await Promise.all(Array.from({ length: nodes }, () => freePort())) : [];
    const children: Array<ReturnType<typeof spawnServer>> = [];
    try {
      for (let i = 0; i < nodes; i++) {
        const args = [MESHBUS_BIN, 'start', '--port', String(ports[i]), '--http-port', '0', '--ws-port', String(wports[i]), '--log-level', 'warn'];
        if (nodes > 1) {
          args.push('--cluster-port', String(cports[i]), '--name', `bench-${i}`);
          if (i > 0) args.push('--seeds', `127.0.0.1:${cports[0]}`);
        }
        // Every bench client comes from 127.0.0.1: lift the per-IP limit (env, so an older CLI ignores it).
        // MESHBUS_BENCH_NODE_FLAGS: Node flags for every node, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile a cluster scenario.
        const flags = process.env.MESHBUS_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
        const c = spawnServer(process.execPath, [...flags, ...args], { ...process.env, MESHBUS_MAX_CONNECTIONS_PER_IP: '100000' });
        children.push(c);
        await waitForPort(`127.0.0.1:${ports[i]}`, c);
      }
    } catch (e) {
      await Promise.all(children.map((c) => stopProcess(c)));
      throw new Error(`meshbus start failed: ${(e as Error).message} ${children.map((c) => c.tail()).join(' ')}`);
    }
    return {
      urls: ports.map((p) => `127.0.0.1:${p}`),
      wsUrls: wports.map((p) => `ws://127.0.0.1:${p}`),
      pids: children.map((c) => c.pid),
      note: nodes > 1 ? `${nodes} \`meshbus start\` processes, full mesh` : '`meshbus start` process',
      stop: async () => {
        await Promise.all(children.map((c) => stopProcess(c)));
      },
    };
  },
  async connect(url) {
    const nc = await connect(url, { name: 'bench' });
    let disconnects = 0;
    nc.on('status', (s) => {
      if (s.type === 'disconnected') disconnects++;
    });
    return {
      publish: (topic, data) => nc.publish(topic, data),
      flush: () => nc.flush(30_000),
      async subscribe(topic, onMsg) {
        nc.subscribe(topic, { callback: (m) => onMsg(m.data) });
        await nc.flush();
      },
      async fill(patterns) {
        for (const p of patterns) nc.subscribe(p, { callback: () => {} });
        await nc.flush(120_000);
      },
      async churn(patterns) {
        for (const p of patterns) nc.subscribe(p, { callback: () => {} }).unsubscribe();
        await nc.flush(30_000);
      },
      async serve(topic) {
        nc.subscribe(topic, { callback: (m) => m.respond(m.data) });
        await nc.flush();
      },
      async request(topic, data, timeoutMs) {
        return (await nc.request(topic, data, { timeout: timeoutMs })).data;
      },
      get disconnects() {
        return disconnects;
      },
      close: () => nc.close(),
    } satisfies BenchClient;
  },
};

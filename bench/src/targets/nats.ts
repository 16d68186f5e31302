/** NATS: nats-server processes (one, or a 2-server cluster with routes) and the `nats` npm client. */
import { freePort, reachable, spawnServer, stopProcess, waitForPort, which } from '../proc.js';
import type { BenchClient, Target } from './types.js';

const SHARED = '127.0.0.1:4222';

async function client(): Promise<typeof import('nats')> {
  return import('nats');
}

export const nats: Target = {
  name: 'nats',
  async clusterSupport() {
    return which('nats-server') ? true : 'nats-server binary not installed (a 2-server cluster needs it)';
  },
  async unavailable() {
    try {
      await client();
    } catch {
      return 'the `nats` npm package is not installed (npm install -D -w @meshbus/bench nats@^2)';
    }
    if (which('nats-server')) return undefined;
    if (await reachable(SHARED)) return undefined;
    return `nats-server is not installed and nothing answers on ${SHARED}`;
  },
  async start(nodes) {
    const bin = which('nats-server');
    if (!bin) {
      if (nodes > 1) throw new Error('nats-server binary not installed');
      return { urls: [SHARED], pids: [undefined], note: `shared server at ${SHARED}`, stop: async () => {} };
    }
    const ports = await Promise.all(Array.from({ length: nodes }, () => freePort()));
    const cports = nodes > 1 ? await Promise.all(Array.from({ length: nodes }, () => freePort())) : [];
    const children: Array<ReturnType<typeof spawnServer>> = [];
    try {
      for (let i = 0; i < nodes; i++) {
        const args = ['-a', '127.0.0.1', '-p', String(ports[i])];
        if (nodes > 1) {
          const routes = cports.filter((_, j) => j !== i).map((p) => `nats://127.0.0.1:${p}`).join(',');
          args.push('--cluster_name', 'bench', '-cluster', `nats://127.0.0.1:${cports[i]}`, '-routes', routes);
        }
        const c = spawnServer(bin, args);
        children.push(c);
        await waitForPort(`127.0.0.1:${ports[i]}`, c);
      }
    } catch (e) {
      await Promise.all(children.map((c) => stopProcess(c)));
      throw new Error(`nats-server failed: ${(e as Error).message} ${children.map((c) => c.tail()).join(' ')}`);
    }
    return {
      urls: ports.map((p) => `127.0.0.1:${p}`),
      pids: children.map((c) => c.pid),
      note: nodes > 1 ? `${nodes} nats-server processes with routes (cluster)` : 'nats-server process',
      stop: async () => {
        await Promise.all(children.map((c) => stopProcess(c)));
      },
    };
  },
  async connect(url) {
    const { connect } = await client();
    const nc = await connect({ servers: url, name: 'bench', maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    let disconnects = 0;
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'disconnect') disconnects++;
    })();
    return {
      publish: (topic, data) => nc.publish(topic, data),
      flush: () => nc.flush(),
      async subscribe(topic, onMsg) {
        nc.subscribe(topic, { callback: (_err, m) => onMsg(m.data) });
        await nc.flush();
      },
      async fill(patterns) {
        for (const p of patterns) nc.subscribe(p, { callback: () => {} });
        await nc.flush();
      },
      async churn(patterns) {
        for (const p of patterns) nc.subscribe(p, { callback: () => {} }).unsubscribe();
        await nc.flush();
      },
      async serve(topic) {
        nc.subscribe(topic, { callback: (_err, m) => m.respond(m.data) });
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

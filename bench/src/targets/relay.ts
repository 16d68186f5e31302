/**
 * The ceiling: `relay-server.js`, a byte relay from the publisher's socket to
 * the subscribers' (no parsing, no routing), talked to by the same meshbus
 * SDK clients as the `meshbus` target. Only on scenarios marked `ceiling`
 * (1 → 1 through one node): it has no routing, queue groups, cluster or
 * WebSocket side.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnServer, stopProcess, waitForPort } from '../proc.js';
import { meshbus } from './meshbus.js';
import type { Target } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled relay, whether this module runs from dist/ or (under vitest) from src/. */
const RELAY = [join(here, '..', 'relay-server.js'), join(here, '..', '..', 'dist', 'relay-server.js')].find((p) => existsSync(p));

export const relay: Target = {
  name: 'relay',
  async clusterSupport() {
    return 'a byte relay has no cluster';
  },
  supports: (sc) => sc.ceiling === true,
  async unavailable() {
    return RELAY ? undefined : 'bench/dist/relay-server.js not built (npx tsc -b)';
  },
  async start(nodes) {
    if (nodes > 1) throw new Error('a byte relay has no cluster');
    const port = await freePort();
    const c = spawnServer(process.execPath, [RELAY!, '--port', String(port)]);
    try {
      await waitForPort(`127.0.0.1:${port}`, c);
    } catch (e) {
      await stopProcess(c);
      throw new Error(`relay failed: ${(e as Error).message} ${c.tail()}`);
    }
    return { urls: [`127.0.0.1:${port}`], pids: [c.pid], note: 'byte relay process (bench/src/relay-server.ts)', stop: () => stopProcess(c) };
  },
  connect: (url) => meshbus.connect(url),
};

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { RawClient } from '@meshbus/testkit';
import { silentLogger, startNode } from '@meshbus/core';
import { startWsGateway } from '@meshbus/core/ws';

/**
 * A node that refuses a connection says why at once, before any HELLO (an
 * ERROR frame: MB_ERR_TOO_MANY_CONNECTIONS, MB_ERR_DRAINING). The Node
 * transports' connect() resolved only once the native scanner had loaded
 * too (a dynamic import of tens of ms at a process's first connection):
 * what the node sent meanwhile reached a Connection with no handshake
 * waiting, and was dropped. connect() failed as "closed the connection"
 * instead of with the node's reason. Run in a fresh process, so the
 * scanner is not loaded yet, as in an app's first connect(), with its load
 * made 500 ms slow (fixtures/slow-native.mjs) so the node's bytes surely
 * come first.
 */
const SDK = new URL('../dist/index.js', import.meta.url).href;
const SLOW = `data:text/javascript,import { register } from 'node:module'; register(${JSON.stringify(new URL('./fixtures/slow-native.mjs', import.meta.url).href)});`;

async function firstConnect(server: string): Promise<string> {
  const script = `import('${SDK}').then((m) => m.connect('${server}', { connectTimeout: 3000, maxReconnectAttempts: 0 })).then((c) => { console.log('connected'); return c.close(); }, (e) => console.log(e.cause?.code ?? e.code));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', SLOW, '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return stdout.trim();
}

describe.each(['tcp', 'ws'] as const)('over %s', (kind) => {
  it('a refusal sent before HELLO reaches the first connect() with its code', async () => {
    const node = await startNode({ port: 0, logger: silentLogger, maxConnections: 1, drainTimeout: 60_000 });
    const gw = kind === 'ws' ? await startWsGateway(node, { port: 0, host: '127.0.0.1' }) : undefined;
    const held = await RawClient.connect(node.port);
    try {
      const server = gw ? `ws://127.0.0.1:${gw.port}` : `tcp://127.0.0.1:${node.port}`;
      expect(await firstConnect(server)).toBe('MB_ERR_TOO_MANY_CONNECTIONS');
    } finally {
      held.close();
      await gw?.close();
      await node.close();
    }
  });
});

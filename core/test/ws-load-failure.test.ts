/**
 * A gateway whose `ws` fails to load (a broken install) fails each upgrade
 * (its load is tried again at the next one), and each failure was an error line: anyone who reached the
 * port had the node write a line per upgrade request. Said once a minute now
 * (ThrottledLog), every upgrade still refused with a 500.
 */
import { request } from 'node:http';
import { expect, it, vi } from 'vitest';
import { logCapture, nodeKit } from '@meshbus/testkit';
import { startWsGateway } from '../src/ws-gateway.js';

// Its server cannot be made, as with a ws that does not load.
vi.mock('ws', async (original) => ({
  ...(await original<typeof import('ws')>()),
  WebSocketServer: class {
    constructor() {
      throw new Error('ws is broken');
    }
  },
}));

const kit = nodeKit();

/** The status an upgrade request gets. */
function upgrade(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/', headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('error', reject);
    req.end();
  });
}

it('ws that fails to load at every upgrade: one "cannot load ws" line, every upgrade refused 500', async () => {
  const { logger, records } = logCapture();
  const node = await kit.node({ logger });
  const gw = await startWsGateway(node, { port: 0, host: '127.0.0.1' });
  kit.defer(() => gw.close());
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push(await upgrade(gw.port));
  expect(new Set(statuses)).toEqual(new Set([500]));
  const failed = records().filter((r) => r.msg === 'ws gateway: cannot load ws');
  expect(failed).toHaveLength(1);
});

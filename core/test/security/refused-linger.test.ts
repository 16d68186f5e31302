/**
 * A connection the node refuses is ended and, if its other end neither reads
 * nor closes, destroyed after drainTimeout. It was only ended: refused
 * connections count in no bound (not in maxConnections, not in an HTTP
 * server once upgraded), so each one a client kept open held a descriptor on
 * the node for ever (maxConnections 2, 200 refused: 202 sockets open).
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';
import { startWsGateway } from '../../src/ws/index.js';

const cleanup = cleanups();

/** A connection that never reads and never closes its side. */
async function stubborn(port: number, send?: string): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  if (send !== undefined) s.write(send);
  s.pause();
  cleanup.push(() => void s.destroy());
  return s;
}

const openOn = (server: net.Server): Promise<number> => new Promise((r) => server.getConnections((_e, n) => r(n)));

describe('refused connections', () => {
  it('past maxConnections: the refused ones are gone after drainTimeout, the admitted stay', async () => {
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, maxConnections: 2, drainTimeout: 300 });
    cleanup.push(() => n.close());
    const ok = [await RawClient.connect(n.port), await RawClient.connect(n.port)];
    for (const c of ok) cleanup.push(() => c.close());
    for (let i = 0; i < 50; i++) await stubborn(n.port);
    expect(n.stats.connectionsRefused).toBe(50);
    const server = (n as unknown as { server: net.Server }).server;
    await until(async () => (await openOn(server)) === 2, 'refused sockets destroyed', 5_000);
    expect(n.connectionCount).toBe(2);
  });

  it('a refused WebSocket upgrade (foreign Origin) is gone after drainTimeout', async () => {
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, drainTimeout: 300 });
    cleanup.push(() => n.close());
    const gw = await startWsGateway(n, { port: 0, host: '127.0.0.1', origins: ['https://app.example.com'] });
    cleanup.push(() => gw.close());
    const upgrade = 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: https://evil.example.com\r\n\r\n';
    const socks = [];
    for (let i = 0; i < 20; i++) socks.push(await stubborn(gw.port, upgrade));
    await until(() => n.stats.connectionsRefused === 20, 'refused');
    await until(() => socks.every((s) => s.readableEnded || s.destroyed || (s as unknown as { _readableState: { ended: boolean } })._readableState.ended), 'node ended them');
    const server = (gw as unknown as { http: net.Server }).http;
    await until(async () => (await openOn(server)) === 0, 'refused upgrades destroyed', 5_000);
  });

  it('a refused client that closes, as told, frees its socket at once, not after drainTimeout', async () => {
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, maxConnections: 1, drainTimeout: 60_000 });
    cleanup.push(() => n.close());
    const ok = await RawClient.connect(n.port);
    cleanup.push(() => ok.close());
    const server = (n as unknown as { server: net.Server }).server;
    for (let i = 0; i < 20; i++) {
      const s = net.connect({ port: n.port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.write(Buffer.alloc(256, 1)); // its first bytes (a HELLO) are already on their way
      s.resume();
      s.on('end', () => s.end()); // reads the ERROR, then closes its side
    }
    await until(() => n.stats.connectionsRefused === 20, 'refused');
    // Before: the node never read them, never saw them close, and kept all 20 for the 60 s drainTimeout.
    await until(async () => (await openOn(server)) === 1, 'refused sockets closed once their clients closed', 5_000);
  });
});

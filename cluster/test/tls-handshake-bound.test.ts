import { connect as netConnect, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { startNode, silentLogger, type MeshNode } from '@meshbus/core';
import { until, cleanups, pkiForFile } from '@meshbus/testkit';

/**
 * The node's TLS client port and a TLS handshake that never finishes (the
 * first bytes of a ClientHello, then nothing: a slow-loris, or a client that
 * hung). Before, that port's tls.Server had Node's default handshake timeout
 * (120 s) where every other listener has the node's `handshakeTimeout`; the
 * socket was counted nowhere (not a session: no maxConnections), and
 * node.close(), "drop every connection at once", waited for it.
 */

const pki = pkiForFile();
const cleanup = cleanups();

/** A TLS handshake record header whose 512-byte body never comes. */
const HALF_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);

async function halfHandshake(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = netConnect(port, '127.0.0.1');
  cleanup.push(() => void socket.destroy());
  let closed = false;
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(HALF_CLIENT_HELLO);
  return { socket, closed: () => closed };
}

async function tlsNode(handshakeTimeout: number): Promise<MeshNode> {
  const n = await startNode({ port: 0, logger: silentLogger, handshakeTimeout, tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => n.close());
  return n;
}

it('a TLS handshake left half-way on the client port is closed after the node\'s handshakeTimeout (was: Node\'s 120 s)', async () => {
  const n = await tlsNode(300);
  const held = await Promise.all([1, 2, 3].map(() => halfHandshake(n.port)));
  await until(() => held.every((h) => h.closed()), 'half-way TLS handshakes closed', 10_000);
});

it('node.close() does not wait for a TLS handshake left half-way (was: close() waited for it)', async () => {
  const n = await tlsNode(60_000);
  const h = await halfHandshake(n.port);
  // Give the node the first bytes (the port hands a TLS record to the TLS server on its first read).
  await new Promise((r) => setTimeout(r, 200));
  let closed = false;
  void n.close().then(() => (closed = true));
  await until(() => closed, 'node.close() returned', 10_000);
  await until(() => h.closed(), 'the half-way handshake dropped', 10_000);
  expect(closed).toBe(true);
});

it('TLS handshakes under way count in maxConnectionsPerIp: past it a connection is closed at once (was: uncounted, every one held)', async () => {
  const n = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: 60_000, maxConnectionsPerIp: 4, tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => n.close());
  const held = [];
  for (let i = 0; i < 10; i++) held.push(await halfHandshake(n.port));
  await until(() => held.filter((h) => h.closed()).length >= 6, 'connections past the bound closed', 10_000);
  expect(held.filter((h) => !h.closed()).length).toBe(4);
  // Once they go, the host connects again.
  for (const h of held) h.socket.destroy();
  await until(() => held.every((h) => h.closed()), 'all gone');
  await until(async () => {
    const again = await halfHandshake(n.port);
    await new Promise((r) => setTimeout(r, 100));
    return !again.closed();
  }, 'a new connection from the host kept');
});

// A guard (it passed before): the HTTP-based listeners had the node's handshakeTimeout already.
it('the HTTPS API and the wss:// gateway close it after handshakeTimeout too', async () => {
  const n = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: 300 });
  cleanup.push(() => n.close());
  const { startHttp } = await import('@meshbus/core/http');
  const http = await startHttp(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => http.close());
  const { startWsGateway } = await import('@meshbus/core/ws');
  const ws = await startWsGateway(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => ws.close());
  const held = [...(await Promise.all([1, 2].map(() => halfHandshake(http.port)))), ...(await Promise.all([1, 2].map(() => halfHandshake(ws.port))))];
  await until(() => held.every((h) => h.closed()), 'half-way TLS handshakes closed', 10_000);
});

import { expect, it } from 'vitest';
import { startNode, silentLogger, type MeshNode } from '@meshbus/core';
import { ClusterNode } from '../src/index.js';
import { cleanups, pkiForFile, until } from '@meshbus/testkit';
import { HALF_CLIENT_HELLO, stalledConnection } from './stalled-tls.js';

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

function halfHandshake(port: number): ReturnType<typeof stalledConnection> {
  return stalledConnection(port, cleanup);
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

/** A node whose handshakeTimeout is `handshakeTimeout`, with its HTTPS API and wss:// gateway on ports of their own. */
async function httpsListeners(handshakeTimeout: number): Promise<{ http: { port: number; close(): Promise<void> }; ws: { port: number; close(): Promise<void> } }> {
  const n = await startNode({ port: 0, logger: silentLogger, handshakeTimeout });
  cleanup.push(() => n.close());
  const { startHttp } = await import('@meshbus/core/http');
  const http = await startHttp(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => http.close());
  const { startWsGateway } = await import('@meshbus/core/ws');
  const ws = await startWsGateway(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => ws.close());
  return { http, ws };
}

// A guard (it passed before): the HTTP-based listeners had the node's handshakeTimeout already.
it('the HTTPS API and the wss:// gateway close it after handshakeTimeout too', async () => {
  const { http, ws } = await httpsListeners(300);
  const held = [...(await Promise.all([1, 2].map(() => halfHandshake(http.port)))), ...(await Promise.all([1, 2].map(() => halfHandshake(ws.port))))];
  await until(() => held.every((h) => h.closed()), 'half-way TLS handshakes closed', 10_000);
});

/*
 * A stop does not wait for TLS handshakes under way on a listener it closes.
 * server.close() resolves only once every socket the listener accepted has
 * closed, and a connection that sent the first bytes of a ClientHello and
 * nothing more (or nothing at all) closes only at its handshake deadline.
 * node.close() already destroyed those on the client port (core
 * closeClientPort); cluster.stop() waited for them up to the cluster's
 * handshakeTimeout, and node.shutdown() (graceful) up to the node's.
 * Deadlines of 30 s here, each test bounded well under that.
 */

const HANDSHAKE = 30_000;

/** A connection that sends `first` and then nothing, once the listener read it (handed it to its TLS server). */
async function stalled(port: number, first: Buffer): ReturnType<typeof stalledConnection> {
  const c = await stalledConnection(port, cleanup, first);
  await new Promise((r) => setTimeout(r, 200));
  return c;
}

/** Resolves with whether `p` settled within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return done;
}


it('cluster.stop() returns at once with a TLS handshake under way on the cluster port (was: waited up to handshakeTimeout)', async () => {
  const node = await startNode({ port: 0, logger: silentLogger });
  cleanup.push(() => node.close());
  const cluster = await new ClusterNode(node, { port: 0, handshakeTimeout: HANDSHAKE, tls: { cert: pki.cert, key: pki.key, ca: pki.ca } }).start();
  cleanup.push(() => cluster.stop());
  const held = [await stalled(cluster.port, HALF_CLIENT_HELLO), await stalled(cluster.port, Buffer.alloc(0))];
  expect(held.map((h) => h.closed())).toEqual([false, false]);
  expect(await within(cluster.stop(), 3000)).toBe(true);
  await until(() => held.every((h) => h.closed()), 'the stalled connections dropped', 3000);
}, 10_000);

it('node.shutdown() (graceful) does not wait for a TLS handshake under way on the client port (was: up to handshakeTimeout)', async () => {
  const n = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: HANDSHAKE, drainTimeout: 500, tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => n.close());
  const held = [await stalled(n.port, HALF_CLIENT_HELLO), await stalled(n.port, Buffer.alloc(0))];
  expect(await within(n.shutdown(), 3000)).toBe(true);
  await until(() => held.every((h) => h.closed()), 'the stalled connections dropped', 3000);
}, 10_000);

it('the HTTPS API and the wss:// gateway close without waiting for a TLS handshake under way (was: up to handshakeTimeout)', async () => {
  const { http, ws } = await httpsListeners(HANDSHAKE);
  const held = [await stalled(http.port, HALF_CLIENT_HELLO), await stalled(ws.port, HALF_CLIENT_HELLO)];
  expect(await within(http.close(), 3000)).toBe(true);
  expect(await within(ws.close(), 3000)).toBe(true);
  await until(() => held.every((h) => h.closed()), 'the stalled connections dropped', 3000);
}, 15_000);

import { connect as netConnect, type Socket } from 'node:net';
import { afterEach, beforeAll, expect, it } from 'vitest';
import { startNode, silentLogger } from '@meshbus/core';
import { until } from '@meshbus/testkit';
import { ClusterNode } from '../src/index.js';
import { makePki, type TestPki } from './tls-certs.js';

/**
 * A stop does not wait for TLS handshakes under way on a listener it closes.
 * server.close() resolves only once every socket the listener accepted has
 * closed, and a connection that sent the first bytes of a ClientHello and
 * nothing more (or nothing at all) closes only at its handshake deadline.
 * node.close() already destroyed those on the client port (core
 * closeClientPort); cluster.stop() waited for them up to the cluster's
 * handshakeTimeout, and node.shutdown() (graceful) up to the node's.
 * Deadlines of 30 s here, each test bounded well under that.
 */

let pki: TestPki;
beforeAll(() => {
  pki = makePki();
});
const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A TLS handshake record header whose body never comes. */
const HALF_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]);

/** A TCP connection to `port` that sends `first` (nothing when empty) and then nothing. */
async function stalled(port: number, first: Buffer): Promise<{ socket: Socket; closed: () => boolean }> {
  const socket = netConnect(port, '127.0.0.1');
  cleanup.push(() => void socket.destroy());
  let closed = false;
  socket.on('error', () => {});
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  if (first.length > 0) socket.write(first);
  // The listener read the first bytes and handed them to its TLS server.
  await new Promise((r) => setTimeout(r, 200));
  return { socket, closed: () => closed };
}

/** Resolves with whether `p` settled within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const done = await Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return done;
}

const HANDSHAKE = 30_000;

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
  const n = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: HANDSHAKE });
  cleanup.push(() => n.close());
  const { startHttp } = await import('@meshbus/core/http');
  const http = await startHttp(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => http.close());
  const { startWsGateway } = await import('@meshbus/core/ws');
  const ws = await startWsGateway(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => ws.close());
  const held = [await stalled(http.port, HALF_CLIENT_HELLO), await stalled(ws.port, HALF_CLIENT_HELLO)];
  expect(await within(http.close(), 3000)).toBe(true);
  expect(await within(ws.close(), 3000)).toBe(true);
  await until(() => held.every((h) => h.closed()), 'the stalled connections dropped', 3000);
}, 15_000);

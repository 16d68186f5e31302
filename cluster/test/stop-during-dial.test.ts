import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { startNode, silentLogger, type MeshNode } from '@meshbus/core';
import { until, cleanups, pkiForFile } from '@meshbus/testkit';
import { ClusterNode } from '../src/index.js';

/**
 * A cluster stopped while one of its dials is still under way (the TCP
 * connection made, the TLS handshake or the DNS answer not yet in): the
 * dial's socket must not become a peer link once the cluster has stopped.
 * Before, the dial finished after stop(), made a link nothing would ever
 * close (stop() had said GOODBYE to the links it knew), which authenticated,
 * carried events and held the process open for ever.
 */

const pki = pkiForFile();
const cleanup = cleanups();

/** A TCP relay to `port` that holds what the dialer sends until release(): a TLS handshake that has not got through yet. */
async function holdingRelay(port: number): Promise<{ port: number; release: () => void; dialers: Socket[]; closed: () => number }> {
  const dialers: Socket[] = [];
  let held = true;
  let closed = 0;
  const waiting: Array<() => void> = [];
  const server: Server = createServer((inbound) => {
    dialers.push(inbound);
    inbound.on('close', () => closed++);
    const outbound = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const pass = (): void => {
      for (const c of chunks.splice(0)) outbound.write(c);
      inbound.on('data', (d: Buffer) => outbound.write(d));
    };
    inbound.on('data', (d: Buffer) => {
      if (held) chunks.push(d);
    });
    if (held) waiting.push(() => pass());
    else pass();
    outbound.on('data', (d: Buffer) => inbound.write(d));
    outbound.on('error', () => inbound.destroy());
    inbound.on('error', () => outbound.destroy());
    outbound.on('close', () => inbound.destroy());
    inbound.on('close', () => outbound.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => {
    for (const s of dialers) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    release: () => {
      held = false;
      for (const w of waiting.splice(0)) w();
    },
    dialers,
    closed: () => closed,
  };
}

async function tlsMember(seeds: string[] = []): Promise<{ node: MeshNode; cluster: ClusterNode }> {
  const node = await startNode({ port: 0, logger: silentLogger });
  const cluster = await new ClusterNode(node, { port: 0, seeds, redialMin: 50, redialMax: 300, tls: { cert: pki.cert, key: pki.key, ca: pki.ca, requireClientCert: true } }).start();
  cleanup.push(() => node.close());
  cleanup.push(() => cluster.stop());
  return { node, cluster };
}

it('a dial whose TLS handshake completes after stop() is closed, never a link (was: a link up after stop, held for ever)', async () => {
  const b = await tlsMember();
  const relay = await holdingRelay(b.cluster.port);
  const a = await tlsMember([`127.0.0.1:${relay.port}`]);
  // A has dialed: the TCP connection is made, its ClientHello held by the relay.
  await until(() => relay.dialers.length >= 1, 'A dials through the relay');
  await a.cluster.stop();
  relay.release();
  // Either A ends the dial's socket, or (the fault) the handshake completes and B sees A linked.
  await until(() => relay.closed() === relay.dialers.length || b.cluster.link(a.node.id)?.state === 'up', 'the held dial settles', 10_000);
  expect(b.cluster.link(a.node.id)?.state).toBeUndefined();
  expect(a.cluster.peers().filter((p) => p.state === 'up')).toEqual([]);
  expect(relay.closed()).toBe(relay.dialers.length);
});

it('a plain dial made while the node stops is not left behind either (DNS answer after stop)', async () => {
  const b = await tlsMember();
  // A name: the dial waits for the resolver first. stop() right when the redialer starts dialing.
  const node = await startNode({ port: 0, logger: silentLogger });
  cleanup.push(() => node.close());
  const a = await new ClusterNode(node, { port: 0, seeds: [`localhost:${b.cluster.port}`], redialMin: 1, redialMax: 300, tls: { cert: pki.cert, key: pki.key, ca: pki.ca, requireClientCert: true } }).start();
  cleanup.push(() => a.stop());
  // The first attempt is scheduled on a timer of at least redialMin: stop just after it fired.
  await new Promise((r) => setTimeout(r, 5));
  await a.stop();
  await new Promise((r) => setTimeout(r, 1000));
  expect(b.cluster.link(node.id)).toBeUndefined();
  expect(a.peers().filter((p) => p.state === 'up')).toEqual([]);
});

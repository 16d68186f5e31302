/**
 * A TLS mesh whose certificates name hosts only (no IP SANs, as most
 * certificates do), joined by host name, while gossip and WELCOME announce
 * nodes by address: replayed from nats-server's "Routing: TLS connections to
 * discovered server may fail" (https://github.com/nats-io/nats-server/pull/3611)
 * and NATS clients' rule for discovered servers
 * (https://github.com/nats-io/nats.rs/pull/500). Each test failed before.
 */
import { expect, it } from 'vitest';
import { startNode, silentLogger, type MeshNode } from '@meshbus/core';
import { connect } from '@meshbus/sdk';
import { until, cleanups, pkiForFile, makePki } from '@meshbus/testkit';
import { ClusterNode } from '../src/index.js';

const pki = pkiForFile('DNS:localhost');
const cleanup = cleanups();

async function meshNode(seeds: string[]): Promise<{ node: MeshNode; cluster: ClusterNode }> {
  const node = await startNode({ port: 0, logger: silentLogger });
  const tls = { cert: pki.cert, key: pki.key, ca: pki.ca, requireClientCert: true };
  const cluster = await new ClusterNode(node, { port: 0, seeds, redialMin: 50, redialMax: 300, tls }).start();
  cleanup.push(() => node.close());
  cleanup.push(() => cluster.stop());
  return { node, cluster };
}

it('peers learned by gossip (announced by address) link up over TLS when the certificates name the host the mesh was seeded by (they never linked: IP not in the certificate)', async () => {
  const a = await meshNode([]);
  const b = await meshNode([`localhost:${a.cluster.port}`]);
  const c = await meshNode([`localhost:${a.cluster.port}`]);
  await until(() => a.cluster.link(b.node.id)?.state === 'up' && a.cluster.link(c.node.id)?.state === 'up', 'seed links', 5000);
  await until(() => b.cluster.link(c.node.id)?.state === 'up' && c.cluster.link(b.node.id)?.state === 'up', 'b and c linked through gossip', 5000);
  expect(c.cluster.link(b.node.id)?.state).toBe('up');
});

it('a client that reached a TLS node by host name fails over to a node it learned by address (it could not verify it)', async () => {
  const tls = { cert: pki.cert, key: pki.key };
  const b = await startNode({ port: 0, logger: silentLogger, tls });
  cleanup.push(() => b.close());
  // The peers as a mesh announces them: the address a link reaches each node at.
  const a = await startNode({ port: 0, logger: silentLogger, tls, peers: () => [`127.0.0.1:${b.port}`] });
  cleanup.push(() => a.close());
  const c = await connect(`tls://localhost:${a.port}`, { tls: { ca: pki.ca }, reconnectBackoff: { base: 20, max: 100 } });
  cleanup.push(() => c.close());
  expect(c.servers).toEqual([`tls://localhost:${a.port}`, `tls://127.0.0.1:${b.port}`]);
  await a.close();
  await until(() => c.isConnected && c.info?.node === b.id, 'failed over to the learned node', 5000);
});

it('the learned address still has to present a certificate for the name or the address: a stranger CA is refused', async () => {
  const stranger = makePki('DNS:localhost');
  const b = await startNode({ port: 0, logger: silentLogger, tls: { cert: stranger.cert, key: stranger.key } });
  cleanup.push(() => b.close());
  const a = await startNode({ port: 0, logger: silentLogger, tls: { cert: pki.cert, key: pki.key }, peers: () => [`127.0.0.1:${b.port}`] });
  cleanup.push(() => a.close());
  const c = await connect(`tls://localhost:${a.port}`, { tls: { ca: pki.ca }, reconnectBackoff: { base: 20, max: 50 } });
  cleanup.push(() => c.close());
  let attempts = 0;
  c.on('status', (s) => void (s.type === 'reconnecting' && attempts++));
  await a.close();
  await until(() => attempts >= 4, 'a few failed attempts', 5000);
  expect(c.isConnected).toBe(false);
});

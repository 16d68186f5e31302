/**
 * A WebSocket client of a mesh learned only the other nodes' TCP addresses
 * (WELCOME `peers`, GOODBYE `reconnect`): a browser cannot use them, so it
 * had no failover beyond the URLs it was given. Replayed from nats-server's
 * websocket work, where connect_urls first named the client port to
 * websocket clients (https://github.com/nats-io/nats-server/pull/1309,
 * fixed there by announcing each server's websocket URLs to websocket
 * clients). Each node's gateway URL now travels in its peer info. Fails
 * before (nowhere to go).
 */
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { startWsGateway } from '@meshbus/core/ws';
import { until, cleanups } from '@meshbus/testkit';
import { connect as connectTcp } from '@meshbus/sdk';
import { connect as connectBrowser } from '@meshbus/sdk/browser';
import { startMeshNode, stopMeshNode } from './mesh-helpers.js';

const cleanup = cleanups();

it('a browser client on one node\'s WebSocket gateway fails over to another node of the mesh when its node drains (it learned only TCP addresses: nowhere to go)', async () => {
  const a = await startMeshNode();
  const b = await startMeshNode({ seeds: [a.peerAddr] });
  cleanup.push(() => stopMeshNode(b), () => stopMeshNode(a));
  const ga = await startWsGateway(a.node, { port: 0 });
  const gb = await startWsGateway(b.node, { port: 0 });
  cleanup.push(() => gb.close(), () => ga.close());
  await until(() => a.cluster.link(b.node.id)?.state === 'up', 'linked', 5000);
  const c = await connectBrowser(`ws://127.0.0.1:${ga.port}/`, { WebSocket: WebSocket as never, pageLifecycle: false, reconnectBackoff: { base: 20, max: 100 } });
  cleanup.push(() => c.close());
  // b's WebSocket URL, not its TCP address (which a browser cannot use); a TCP client still hears the TCP address.
  expect(c.info?.peers).toEqual([`ws://127.0.0.1:${gb.port}/`]);
  const tcp = await connectTcp(a.url);
  cleanup.push(() => tcp.close());
  expect(tcp.info?.peers).toEqual([b.url]);
  await a.node.shutdown();
  await until(() => c.isConnected && c.info?.node === b.node.id, 'failed over to b', 3000);
});

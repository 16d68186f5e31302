/**
 * A WebSocket client of a mesh learns only the other nodes' TCP addresses
 * (WELCOME `peers`, GOODBYE `reconnect`): a browser cannot use them, so it
 * has no failover beyond the URLs it was given. Replayed from nats-server's
 * websocket work, where connect_urls first named the client port to
 * websocket clients (https://github.com/nats-io/nats-server/pull/1309,
 * fixed there by announcing each server's websocket URLs to websocket
 * clients). NOT FIXED: marked `it.fails` — it documents the fault and starts
 * failing (to be turned into a plain `it`) once nodes announce WebSocket
 * URLs to WebSocket sessions.
 */
import { afterEach, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startWsGateway } from '@meshbus/core/ws';
import { until } from '@meshbus/testkit';
import { connect as connectBrowser } from '@meshbus/sdk/browser';
import { startMeshNode, stopMeshNode } from './mesh-helpers.js';

const cleanup: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

it.fails('a browser client on one node\'s WebSocket gateway fails over to another node of the mesh when its node drains (it learned only TCP addresses: nowhere to go)', async () => {
  const a = await startMeshNode();
  const b = await startMeshNode({ seeds: [a.peerAddr] });
  cleanup.push(() => stopMeshNode(b), () => stopMeshNode(a));
  const ga = await startWsGateway(a.node, { port: 0 });
  const gb = await startWsGateway(b.node, { port: 0 });
  cleanup.push(() => gb.close(), () => ga.close());
  await until(() => a.cluster.link(b.node.id)?.state === 'up', 'linked', 5000);
  const c = await connectBrowser(`ws://127.0.0.1:${ga.port}/`, { WebSocket: WebSocket as never, pageLifecycle: false, reconnectBackoff: { base: 20, max: 100 } });
  cleanup.push(() => c.close());
  // What it learned: b's TCP address, which the browser entry cannot use.
  expect(c.info?.peers).toEqual([b.url]);
  await a.node.shutdown();
  await until(() => c.isConnected && c.info?.node === b.node.id, 'failed over to b', 3000);
});

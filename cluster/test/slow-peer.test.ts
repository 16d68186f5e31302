import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { startNode, silentLogger } from '@meshbus/core';
import { startHttp } from '@meshbus/core/http';
import { RawClient, until } from '@meshbus/testkit';
import { ClusterNode } from '../src/index.js';
import { rawPeer } from './mesh-helpers.js';

/**
 * Hostile review (variant of issue #13.4: what a slow consumer holds must be
 * what the node reports): a peer, leaf or gateway link that stops reading
 * holds up to the cluster's maxPending (64 MiB by default) in the node, per
 * link, and `meshbus_pending_bytes` counts client connections only, so a hub
 * with stuck leaves held hundreds of MiB that no view or metric showed. Each
 * peer's queued bytes are now in `peers()`, /v1/cluster and
 * `meshbus_peer_pending_bytes{peer}`.
 */

const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of stops.splice(0).reverse()) await f();
});

describe('a peer link that stops reading', () => {
  it("what the node queues for it is reported: peers(), /v1/cluster and meshbus_peer_pending_bytes{peer}", async () => {
    const node = await startNode({ port: 0, logger: silentLogger });
    stops.push(() => node.close());
    const cluster = await new ClusterNode(node, { port: 0, mode: 'partial' }).start();
    stops.push(() => cluster.stop());
    const id = randomBytes(8).toString('hex');
    // A cluster address nobody listens on: the node never links back to it (partial mesh).
    const peer = await rawPeer(cluster.port, { id, name: 'stuck', cluster: '127.0.0.1:1', client: '127.0.0.1:1' });
    stops.push(() => peer.close());
    await until(() => cluster.peers().some((p) => p.id === id && p.state === 'up'), 'the raw peer is up');
    // Its interest in `feed`, then it stops reading.
    peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'feed', null, 1]] }) });
    peer.pauseReading();
    const pub = await RawClient.connect(node.port);
    stops.push(() => pub.close());
    const big = encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: new Uint8Array(64 * 1024) });
    const pendingOf = (): number => cluster.peers().find((p) => p.id === id)?.pending ?? 0;
    for (let i = 0; i < 512 && pendingOf() < 1024 * 1024; i++) {
      pub.socket.write(big);
      if (i % 16 === 15) await pub.flush();
    }
    await pub.flush();
    const pending = pendingOf();
    // The node holds bytes for the stuck peer (queue and socket), within the link's bound...
    expect(pending).toBeGreaterThan(512 * 1024);
    expect(pending).toBeLessThanOrEqual(64 * 1024 * 1024);
    // ...and says so where operators look.
    const http = await startHttp(node, { port: 0, host: '127.0.0.1', cluster });
    stops.push(() => http.close());
    const view = (await (await fetch(`${http.url}/v1/cluster`)).json()) as { peers: Array<{ id: string; pending?: number }> };
    expect(view.peers.find((p) => p.id === id)?.pending).toBeGreaterThan(512 * 1024);
    const text = await (await fetch(`${http.url}/metrics`)).text();
    const m = text.match(new RegExp(`^meshbus_peer_pending_bytes\\{peer="${id}"\\} (\\d+)$`, 'm'));
    expect(Number(m?.[1])).toBeGreaterThan(512 * 1024);
  });
});

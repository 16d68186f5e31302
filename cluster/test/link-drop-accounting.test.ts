import { afterEach, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import { startHttp } from '@meshbus/core/http';
import type { PeerInfo } from '../src/index.js';
import type { PeerLink } from '../src/peer-link.js';
import { fakePeer, startMeshNode, stopMeshNode, stoppedPeer, type TestNode } from './mesh-helpers.js';

/**
 * A peer link's lost events are in the node-wide counters, each once
 * (`stats.dropped.slowPeer`, /v1/node, `meshbus_dropped_total{reason="slow_peer"}`),
 * beside the link's own `dropped` (peers view, /v1/cluster): what the peer
 * got and what the node counted add up to what was published. Before, a
 * link's drops were in its own `dropped` only: the node-wide counters said
 * nothing was lost while tens of thousands of events were.
 */
const nodes: TestNode[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
});

/** A node P with a raw peer on `feed` that stopped reading (stoppedPeer), and `rounds` chunks of 600 events published to it through P. */
async function floodStoppedPeer(rounds: number): Promise<{ p: TestNode; peer: RawClient; link: PeerLink; published: number }> {
  const { p, peer, id } = await stoppedPeer('feed');
  nodes.push(p);
  raws.push(peer);
  const pub = await RawClient.connect(p.node.port);
  raws.push(pub);
  const frame = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(32, 1) }));
  const chunk = Buffer.concat(Array.from({ length: 600 }, () => frame)); // ~58 KiB: runs of up to 600 events
  let published = 0;
  for (let i = 0; i < rounds; i++) {
    pub.sendBytes(chunk);
    published += 600;
    if (i % 10 === 9) await pub.flush(10_000);
  }
  await pub.flush(10_000);
  return { p, peer, link: p.cluster.link(id) as PeerLink, published };
}

it('a peer that stopped reading, then a link closed with events queued: received + dropped = published, node-wide', async () => {
  // (The test ends the link itself.)
  const { p, peer, link, published } = await floodStoppedPeer(400);
  const stats = p.node.stats;
  expect(link.state).toBe('up');
  expect(link.dropped).toBeGreaterThan(1000);
  // Node-wide, as the link counts them (on the old code: 0).
  expect(stats.dropped.slowPeer).toBe(link.dropped);
  // GET /v1/stats and /metrics carry them.
  const http = await startHttp(p.node, { port: 0, host: '127.0.0.1', cluster: p.cluster });
  try {
    const view = (await (await fetch(`${http.url}/v1/stats`)).json()) as { counters: { dropped: Record<string, number> } };
    expect(view.counters.dropped.slowPeer).toBe(link.dropped);
    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    expect(metrics).toContain(`meshbus_dropped_total{reason="slow_peer"} ${link.dropped}`);
  } finally {
    await http.close();
  }
  // Bytes that are no frame: the node ends the link, its queue full: what still waits is discarded, and counted.
  const before = link.dropped;
  peer.sendBytes(Buffer.alloc(64, 0xff));
  await until(() => link.state === 'closed', 'the node ends the link', 10_000);
  // Read at once, before the link's close deadline (1 s); a peer that does not is the last test here.
  peer.resumeReading();
  await peer.waitClosed(15_000);
  const received = peer.events('feed').length;
  expect(received).toBeGreaterThan(0);
  expect(link.dropped).toBeGreaterThan(before); // the events still queued when it closed
  expect(stats.dropped.slowPeer).toBe(link.dropped);
  expect(received + stats.dropped.slowPeer + stats.noInterest).toBe(published);
});

it("a peer's event older than one delivered from its origin: dropped for order, and counted node-wide", async () => {
  const SECRET = 'drop-accounting-secret';
  const me: PeerInfo = { id: 'ab12cd34ef56ab79', name: 'late-peer', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };
  const t = await startMeshNode({ secret: SECRET, pingInterval: 60_000 }, 't');
  nodes.push(t);
  const sub = await RawClient.connect(t.node.port);
  raws.push(sub);
  sub.sub('ord.x', 1);
  await sub.flush();
  const peer = await fakePeer(t, me, SECRET);
  raws.push(peer);
  const origin = Buffer.from(me.id, 'hex');
  const now = Date.now() * 1000;
  // In order, then two from before (a replaced link's late events), then in order again.
  const seqs = [now, now + 1, now - 5, now - 4, now + 2];
  peer.sendBytes(Buffer.concat(seqs.map((seq, i) => encodeFrame({ type: FrameType.PUB, topic: 'ord.x', origin, seq, payload: Buffer.from(String(i)) }))));
  await peer.flush();
  await until(() => t.node.stats.msgsIn >= 5, 'the events at the node');
  await sub.flush();
  const received = sub.events('ord.x').map((g) => g.payload.toString());
  expect(received).toEqual(['0', '1', '4']);
  expect(t.cluster.reorderedDropped).toBe(2);
  // Node-wide, each once (on the old code: the cluster's own count only).
  expect(t.node.stats.dropped.outOfOrder).toBe(2);
  expect(received.length + t.node.stats.dropped.outOfOrder).toBe(seqs.length);
});

/**
 * A peer link closed (the node leaving: GOODBYE) with events still on their
 * way to a peer that does not read them before the link's close deadline
 * (1 s): the socket is destroyed then, and the events the peer never got
 * are counted (stats.dropped.slowPeer, meshbus_dropped_total{reason="slow_peer"}),
 * each once: what the peer got and what the node counted add up to what was
 * published. Before, what the socket held when the deadline destroyed it was
 * lost uncounted (the first test here reads it before the deadline).
 */
it('a link destroyed at its close deadline counts the events its peer never got: received + dropped = published (was: lost uncounted)', async () => {
  const { p, peer, link, published } = await floodStoppedPeer(100);
  expect(link.state).toBe('up');
  // GOODBYE on every link; stop() returns once the peer's socket is gone: destroyed at the deadline, unread.
  await p.cluster.stop();
  expect(link.state).toBe('closed');
  peer.resumeReading();
  await peer.waitClosed(15_000);
  const received = peer.events('feed').length;
  const stats = p.node.stats;
  expect(received).toBeGreaterThan(0);
  expect(stats.dropped.slowPeer).toBe(link.dropped);
  expect(received + stats.dropped.slowPeer + stats.noInterest).toBe(published);
}, 30_000);

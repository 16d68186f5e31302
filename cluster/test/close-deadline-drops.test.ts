import { afterEach, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { RawClient } from '@meshbus/testkit';
import type { PeerLink } from '../src/peer-link.js';
import { stopMeshNode, stoppedPeer, type TestNode } from './mesh-helpers.js';

/**
 * A peer link closed (the node leaving: GOODBYE) with events still on their
 * way to a peer that does not read them before the link's close deadline
 * (1 s): the socket is destroyed then, and the events the peer never got
 * are counted (stats.dropped.slowPeer, meshbus_dropped_total{reason="slow_peer"}),
 * each once: what the peer got and what the node counted add up to what was
 * published. Before, what the socket held when the deadline destroyed it was
 * lost uncounted (link-drop-accounting.test.ts read it before the deadline).
 */
const nodes: TestNode[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
});

it('a link destroyed at its close deadline counts the events its peer never got: received + dropped = published (was: lost uncounted)', async () => {
  const { p, peer, id } = await stoppedPeer('feed');
  nodes.push(p);
  raws.push(peer);
  const pub = await RawClient.connect(p.node.port);
  raws.push(pub);
  const frame = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(32, 1) }));
  const chunk = Buffer.concat(Array.from({ length: 600 }, () => frame)); // runs of up to 600 events
  const link = p.cluster.link(id) as PeerLink;
  let published = 0;
  for (let i = 0; i < 100; i++) {
    pub.sendBytes(chunk);
    published += 600;
    if (i % 10 === 9) await pub.flush(10_000);
  }
  await pub.flush(10_000);
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

/**
 * Nodes with different `maxTopicLength` (1,024 and the default 256) on one
 * link, as the mixed maxPayload review found for payloads: the node with the
 * smaller limit refused the longer topics its peer had accepted, as a
 * malformed frame (counted in protocolErrors, logged at most), and its
 * subscribers never got them; the publisher heard nothing. A node's limit
 * bounds what its clients publish; an event from a peer was checked where it
 * was published. Fails before (the 602-byte topic never arrived).
 */
import { expect, it } from 'vitest';
import { connect } from '@meshbus/sdk';
import { until, cleanups } from '@meshbus/testkit';
import { FrameType, encodeBody } from '@meshbus/proto';
import { fakePeer, remoteInterest, startMeshNode, stopMeshNode } from './mesh-helpers.js';

const cleanup = cleanups();

it('an event whose topic the publishing node allows reaches subscribers on a node with a smaller maxTopicLength', async () => {
  const a = await startMeshNode({}, 'a', { maxTopicLength: 1024 });
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b');
  cleanup.push(() => stopMeshNode(b), () => stopMeshNode(a));
  await until(() => a.cluster.link(b.node.id)?.state === 'up', 'linked', 5000);
  const sub = await connect(b.url);
  cleanup.push(() => sub.close());
  const got: string[] = [];
  sub.subscribe('t.>', { callback: (m) => void got.push(m.topic) });
  await sub.flush();
  await until(() => remoteInterest(a) > 0, 'interest at a', 5000);
  const pub = await connect(a.url);
  cleanup.push(() => pub.close());
  const long = 't.' + 'x'.repeat(600);
  pub.publish(long, '1');
  pub.publish('t.short', '2');
  await until(() => got.length === 2, 'both events at b', 5000);
  expect(got).toEqual([long, 't.short']);
  expect(b.node.stats.protocolErrors).toBe(0);
  // b's own clients are still held to b's limit.
  expect(() => sub.publish(long, 'x')).toThrow(expect.objectContaining({ code: 'MB_ERR_BAD_TOPIC' }));
});

// The twenty-fourth session's review: the interest for such a topic was dropped, silently, by a node with the
// smaller limit (the subscriber's node had checked it against its own). Fails before: the leaf got nothing.
it('a subscription whose pattern the subscriber\'s node allows is routed to it through a hub with a smaller maxTopicLength', async () => {
  const hub = await startMeshNode({}, 'hub');
  const p = await startMeshNode({ seeds: [hub.peerAddr] }, 'p', { maxTopicLength: 1024 });
  const leaf = await startMeshNode({ mode: 'leaf', seeds: [hub.peerAddr] }, 'leaf', { maxTopicLength: 1024 });
  cleanup.push(() => stopMeshNode(leaf), () => stopMeshNode(p), () => stopMeshNode(hub));
  await until(() => hub.cluster.link(p.node.id)?.state === 'up' && leaf.cluster.link(hub.node.id)?.state === 'up', 'links', 5000);
  const long = `long.${'x'.repeat(300)}`;
  const sub = await connect(leaf.url);
  cleanup.push(() => sub.close());
  const got: string[] = [];
  sub.subscribe(long, { callback: (m) => void got.push(Buffer.from(m.data).toString()) });
  await sub.flush();
  await until(() => remoteInterest(p) > 0, 'the interest at p, through the hub', 5000);
  const pub = await connect(p.url);
  cleanup.push(() => pub.close());
  pub.publish(long, 'L');
  await until(() => got.length === 1, 'the event at the leaf', 5000);
  expect(got).toEqual(['L']);
});

it('interest entries with an invalid pattern are refused with one MB_ERR_BAD_TOPIC per frame (they were dropped without a word)', async () => {
  const secret = 'mixed-topic-secret';
  const a = await startMeshNode({ secret }, 'a');
  cleanup.push(() => stopMeshNode(a));
  const peer = await fakePeer(a, { id: '00000000000000b1', name: 'b', cluster: '127.0.0.1:1', client: '127.0.0.1:1' }, secret);
  cleanup.push(() => peer.close());
  peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'a..b', null, 1], [2, 'x.>.y', null, 1], [3, 'fine.*', null, 1]] }) });
  const err = await peer.waitFor((g) => g.type === FrameType.ERROR, 5000);
  expect(err.error).toBe('MB_ERR_BAD_TOPIC');
  await until(() => remoteInterest(a) === 1, 'the good entry kept', 5000);
  expect(peer.got.filter((g) => g.type === FrameType.ERROR)).toHaveLength(1);
});

// A peer's entries past this node's maxTopicLength weigh their whole length too (the review of the change above:
// counted at half, 60,000-byte patterns held 3.2 times the memory of short ones at the same maxPeerInterest).
it('a peer\'s long interest entries weigh their length: fewer of them fit maxPeerInterest', async () => {
  const secret = 'mixed-topic-secret';
  const a = await startMeshNode({ secret, maxPeerInterest: 200 }, 'a');
  cleanup.push(() => stopMeshNode(a));
  const peer = await fakePeer(a, { id: '00000000000000b2', name: 'b', cluster: '127.0.0.1:1', client: '127.0.0.1:1' }, secret);
  cleanup.push(() => peer.close());
  const long = (i: number): string => `l${i}${'x'.repeat(3000)}`;
  peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add: Array.from({ length: 100 }, (_, i) => [i + 1, long(i), null, 1]) }) });
  await peer.waitFor((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS', 5000);
  // 3,000 bytes: a subscription's weight (2) and its length in weight units (4): 33 of 100 (at half, 100 fitted).
  expect(remoteInterest(a)).toBe(33);
});

// Past this node's maxTopicLength in bytes, not UTF-16 code units: 203 code units of 'é' are 403 bytes, past the default 256.
it('a peer\'s multi-byte entries past maxTopicLength in bytes weigh their length too', async () => {
  const secret = 'mixed-topic-secret';
  const a = await startMeshNode({ secret, maxPeerInterest: 200 }, 'a');
  cleanup.push(() => stopMeshNode(a));
  const peer = await fakePeer(a, { id: '00000000000000b3', name: 'b', cluster: '127.0.0.1:1', client: '127.0.0.1:1' }, secret);
  cleanup.push(() => peer.close());
  const wide = (i: number): string => `w${String(i).padStart(3, '0')}${'é'.repeat(199)}`;
  peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add: Array.from({ length: 150 }, (_, i) => [i + 1, wide(i), null, 1]) }) });
  await peer.waitFor((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS', 5000);
  // A subscription's weight and its 402 bytes in weight units (1): 100 of 150 (by UTF-16 length all 150 fitted).
  expect(remoteInterest(a)).toBe(100);
});

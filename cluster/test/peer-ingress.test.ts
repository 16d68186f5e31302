import { afterEach, expect, it } from 'vitest';
import { Flags, FrameType, OFF, encodeFrame, resealHeader, writeU32, type FrameSpec } from '@meshbus/proto';
import type { Client, Msg } from '@meshbus/sdk';
import { frameWithExt, until } from '@meshbus/testkit';
import { client, fullyMeshed, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

/**
 * Issue #13: events from a peer pass the same extension check as a client's
 * (SPEC §8) — a peer may be buggy or compromised. The one difference: a
 * position stamped by a node is legitimate from a peer.
 */

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const n of nodes.splice(0)) await stopMeshNode(n);
});

it('a peer event with a malformed extension or a REQ without reply is dropped; a node-stamped position passes', async () => {
  const a = await startMeshNode({}, 'a');
  nodes.push(a);
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b');
  nodes.push(b);
  await until(() => fullyMeshed([a, b]), 'mesh');
  const sub = await client(b);
  clients.push(sub);
  const got: Array<{ data: string; offset: number | undefined }> = [];
  sub.subscribe('peer.>', { callback: (m: Msg) => void got.push({ data: Buffer.from(m.data).toString(), offset: m.position?.offset }) });
  await sub.flush();
  await until(() => remoteInterest(a) === 1, 'interest at a');
  const link = a.cluster.link(b.node.id)!;
  // Sequences above anything a stamped (the full mesh drops events whose sequence goes back).
  let seq = Date.now() * 4000;
  const spec = (type: FrameType, payload: string): FrameSpec => ({ type, topic: 'peer.x', seq: ++seq, flags: Flags.ACK_REQUESTED, payload: Buffer.from(payload) });
  link.sendRaw(frameWithExt(spec(FrameType.PUB, 'poison'), Uint8Array.from([0x81, 0xa1, 0x68, 0x05])));
  link.sendRaw(encodeFrame(spec(FrameType.REQ, 'no-reply')));
  link.sendRaw(encodeFrame({ ...spec(FrameType.PUB, 'stamped'), ext: { position: { epoch: '0123456789abcdef', offset: 7 } } }));
  await until(() => got.length >= 1, 'the stamped event');
  await sub.flush();
  expect(got).toEqual([{ data: 'stamped', offset: 7 }]);
  expect(b.cluster.badPeerEvents).toBe(2);
  // b carries on (a's own later events would now be behind the raw sequences, so publish on b)
  const pub = await client(b);
  clients.push(pub);
  pub.publish('peer.x', 'after');
  await until(() => got.some((g) => g.data === 'after'), 'a normal event after the bad ones');
  expect(link.state).toBe('up');
});

it('a peer event with a wrong topic hash or an invalid topic goes through the node ingress: dropped, counted, link kept', async () => {
  const a = await startMeshNode({}, 'a');
  nodes.push(a);
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b');
  nodes.push(b);
  await until(() => fullyMeshed([a, b]), 'mesh');
  const sub = await client(b);
  clients.push(sub);
  const got: string[] = [];
  sub.subscribe('peer.>', { callback: (m: Msg) => void got.push(Buffer.from(m.data).toString()) });
  await sub.flush();
  await until(() => remoteInterest(a) === 1, 'interest at a');
  const link = a.cluster.link(b.node.id)!;
  let seq = Date.now() * 4000;
  const badHash = encodeFrame({ type: FrameType.PUB, topic: 'peer.x', seq: ++seq, payload: Buffer.from('bad-hash') });
  writeU32(badHash, OFF.TOPIC_HASH, 12345);
  resealHeader(badHash, 0);
  const errorsBefore = b.node.stats.protocolErrors;
  link.sendRaw(badHash);
  link.sendRaw(encodeFrame({ type: FrameType.PUB, topic: 'peer..x', seq: ++seq, payload: Buffer.from('bad-topic') }));
  link.sendRaw(encodeFrame({ type: FrameType.PUB, topic: 'peer.x', seq: ++seq, payload: Buffer.from('good') }));
  await until(() => got.length >= 1, 'the good event');
  await sub.flush();
  expect(got).toEqual(['good']);
  expect(b.cluster.badPeerEvents).toBe(2);
  expect(b.node.stats.protocolErrors - errorsBefore).toBe(2);
  expect(link.state).toBe('up');
});

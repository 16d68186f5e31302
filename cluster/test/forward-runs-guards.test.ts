/**
 * A peer's back-to-back events on one topic are delivered as a run (core
 * publish-run.ts), checked once per receiver. What a receiver may get must
 * still be decided per event wherever the decision reads more than the
 * topic: a hop record on `_TRACE.<id>` reaches its tracer only when the
 * traced event entered the mesh at this node (the record's `origin`, in its
 * payload: trace-guard.ts, SPEC 10.9). And a queue-group event between events
 * of a run reaches the receiver after them (MeshNode.deliverToGroup flushes).
 */
import { expect, it } from 'vitest';
import { FrameType, decodeBody, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import type { PeerInfo } from '../src/index.js';
import { fakePeer, startMeshNode, stopMeshNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';
const cleanup = cleanups();

const me: PeerInfo = { id: 'ab12cd34ef56ab78', name: 'forwarding-peer', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };

it('a forged hop record right behind a real one on the same _TRACE topic, in one chunk from a peer, does not reach the tracer', async () => {
  const t = await startMeshNode({ secret: SECRET, pingInterval: 5000 }, 'a');
  cleanup.push(() => stopMeshNode(t));
  const tracer = await RawClient.connect(t.node.port);
  cleanup.push(() => tracer.close());
  const id = '0123456789abcdef';
  tracer.sub(`_TRACE.${id}`, 1); // claims the trace id on this node
  await tracer.flush();
  const peer = await fakePeer(t, me, SECRET);
  cleanup.push(() => peer.close());
  const origin = Buffer.from(me.id, 'hex');
  const record = (o: string, n: number): Uint8Array =>
    encodeFrame({ type: FrameType.PUB, topic: `_TRACE.${id}`, payload: encodeBody({ node: me.id, name: 'x', origin: o, hops: 1, topic: 't', from: 'client', in: n, out: n, to: [] }), origin, seq: n, maxHops: 8 });
  // Real (its event entered at this node), forged (entered elsewhere), real, forged: one write, one chunk.
  peer.sendBytes(Buffer.concat([record(t.node.id, 1), record('ffffffffffffffff', 2), record(t.node.id, 3), record('eeeeeeeeeeeeeeee', 4)]));
  // And a forged one first, then a real one.
  await peer.flush();
  peer.sendBytes(Buffer.concat([record('dddddddddddddddd', 5), record(t.node.id, 6)]));
  await peer.flush();
  await until(() => t.node.stats.msgsIn >= 6, 'the records at the node');
  await tracer.flush();
  const got = tracer.got.filter((g) => g.type === FrameType.PUB).map((g) => (decodeBody(g.payload) as { in: number }).in);
  expect(got).toEqual([1, 3, 6]);
});

it("a queue-group event a peer sends between events of a run reaches the receiver after them, as sent", async () => {
  const a = await startMeshNode({}, 'a');
  cleanup.push(() => stopMeshNode(a));
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b');
  cleanup.push(() => stopMeshNode(b));
  const r = await RawClient.connect(b.node.port);
  cleanup.push(() => r.close());
  r.sub('run.a', 1);
  r.sub('run.c', 2, { q: 'g' });
  await r.flush();
  await until(() => a.node.table.size >= 2, 'b\'s interest at a');
  const p = await RawClient.connect(a.node.port);
  cleanup.push(() => p.close());
  const pub = (topic: string, n: number): Uint8Array => encodeFrame({ type: FrameType.PUB, topic, payload: Buffer.from(String(n)) });
  const sent: string[] = [];
  const bytes: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const topic = i % 5 === 3 ? 'run.c' : 'run.a';
    bytes.push(pub(topic, i));
    sent.push(`${topic}:${i}`);
  }
  p.sendBytes(Buffer.concat(bytes)); // one chunk at a; a sends them on to b in one write
  await p.flush();
  await until(() => r.got.filter((g) => g.type === FrameType.PUB).length >= 40, 'every event at b');
  expect(r.got.filter((g) => g.type === FrameType.PUB).map((g) => `${g.topic}:${g.payload.toString()}`)).toEqual(sent);
});

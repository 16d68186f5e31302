/**
 * A peer's back-to-back events on one topic are delivered as a run (core
 * publish-run.ts), checked once per receiver. What a receiver may get must
 * still be decided per event wherever the decision reads more than the
 * topic: a hop record on `_TRACE.<id>` reaches its tracer only when the
 * traced event entered the mesh at this node (the record's `origin`, in its
 * payload: trace-guard.ts, SPEC 10.9).
 */
import { afterEach, expect, it } from 'vitest';
import { FrameType, decodeBody, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import type { PeerInfo } from '../src/index.js';
import { fakePeer, startMeshNode, stopMeshNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

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

import { afterEach, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import type { Client, Msg } from '@meshbus/sdk';
import { RawClient, until } from '@meshbus/testkit';
import { client, fullyMeshed, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

/**
 * A peer link's unfinished frame counts in the node's input budget (core
 * input-budget.ts, SPEC 9.5) like a client's: a link that holds part of a
 * frame it does not finish, while the budget is full and a publisher waits,
 * is closed with MB_ERR_INPUT_BUDGET (its pings arrive inside the frame: a
 * dribble), the publisher's events get through, and the link is dialled
 * again. Before, a link held up to the frame limit until liveness closed
 * it, outside any node-wide bound. Real nodes and sockets on loopback.
 */

const nodes: TestNode[] = [];
const clients: Client[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const c of raws.splice(0)) c.close();
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const n of nodes.splice(0)) await stopMeshNode(n);
});

it("a peer link holding part of a frame it never finishes is charged to the node's input budget, and closed when the budget is wanted", async () => {
  // The least budget b takes: twice its largest frame (1 MiB payloads: ~4.3 MB).
  const b = await startMeshNode({}, 'b', { inputBudget: 4_400_000, inputStall: 300 });
  nodes.push(b);
  const a = await startMeshNode({ seeds: [b.peerAddr] }, 'a');
  nodes.push(a);
  await until(() => fullyMeshed([a, b]), 'mesh');
  const budget = b.node.inputBudget;

  // a's link sends 2 MB of a 2.1 MB PUB and never the rest (a buggy or hostile peer); its pings
  // and pongs then arrive inside that frame, a dribble of 64 bytes.
  const linkAtB = b.cluster.link(a.node.id)!;
  const frame = encodeFrame({ type: FrameType.PUB, topic: 'hold.x', seq: Date.now() * 4000, payload: Buffer.alloc(2_090_000, 7) });
  a.cluster.link(b.node.id)!.sendRaw(frame.subarray(0, 2_000_000));
  await until(() => budget.used >= 2_000_000, "the link's unfinished frame charged at b");

  // A TCP client on b holds as much of a frame it does not finish either: the budget is full.
  const holder = await RawClient.connect(b.node.port);
  raws.push(holder);
  holder.sendBytes(encodeFrame({ type: FrameType.PUB, topic: 'hold.y', payload: Buffer.alloc(2_090_000, 7) }).subarray(0, 2_000_000));
  await until(() => budget.used >= 4_000_000, "the client's unfinished frame charged");

  // A publisher on b needs room: the holders that send nothing are closed, the link first (it held the longest).
  const sub = await client(b);
  clients.push(sub);
  const got: number[] = [];
  sub.subscribe('big.>', { callback: (m: Msg) => void got.push(m.data.length) });
  await sub.flush();
  const pub = await RawClient.connect(b.node.port);
  raws.push(pub);
  for (let i = 0; i < 4; i++) pub.pub('big.x', Buffer.alloc(1024 * 1024, i));
  await until(() => got.length === 4, 'four 1 MiB events on b', 15_000);
  expect(pub.closed).toBe(false);
  await until(() => linkAtB.state === 'closed', 'the holding link closed');
  expect(budget.evictions).toBeGreaterThanOrEqual(1);
  // a dials again, and events cross the new link.
  await until(() => fullyMeshed([a, b]) && b.cluster.link(a.node.id) !== linkAtB, 'the link dialled again', 15_000);
  await until(() => remoteInterest(a) >= 1, 'interest at a');
  const pubA = await client(a);
  clients.push(pubA);
  pubA.publish('big.a', 'over the new link');
  await until(() => got.includes('over the new link'.length), 'an event from a');
});

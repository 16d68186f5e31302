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
 * it, outside any node-wide bound.
 *
 * And a link the budget pauses is not read: the pings and pongs of the other
 * node wait in the socket. The link's own liveness took that silence, which
 * was the node's, for a dead peer: a link paused while idle holders filled
 * the budget (closed after `inputStall`) was closed as stale after 3 of its
 * ping intervals (200 ms here, 2 s by default, less than the 5 s default
 * `inputStall`), its event lost with it, and dialled again: it flapped for as
 * long as holders kept the budget full. Real nodes and sockets on loopback.
 */

const nodes: TestNode[] = [];
const clients: Client[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const c of raws.splice(0)) c.close();
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const n of nodes.splice(0)) await stopMeshNode(n);
});

/** Node b with the least budget it takes for 1 MiB payloads (~4.3 MB) and `inputStall` ms, a meshed with it. */
async function pair(inputStall: number): Promise<{ a: TestNode; b: TestNode }> {
  const b = await startMeshNode({}, 'b', { inputBudget: 4_400_000, inputStall });
  nodes.push(b);
  const a = await startMeshNode({ seeds: [b.peerAddr] }, 'a');
  nodes.push(a);
  await until(() => fullyMeshed([a, b]), 'mesh');
  return { a, b };
}

/** A raw TCP client on `n` that sends 2 MB of a 2.1 MB PUB and never the rest. */
async function holder(n: TestNode): Promise<void> {
  const h = await RawClient.connect(n.node.port);
  raws.push(h);
  h.sendBytes(encodeFrame({ type: FrameType.PUB, topic: 'hold.y', payload: Buffer.alloc(2_090_000, 7) }).subarray(0, 2_000_000));
}

it("a peer link holding part of a frame it never finishes is charged to the node's input budget, and closed when the budget is wanted", async () => {
  const { a, b } = await pair(300);
  const budget = b.node.inputBudget;

  // a's link sends 2 MB of a 2.1 MB PUB and never the rest (a buggy or hostile peer); its pings
  // and pongs then arrive inside that frame, a dribble of 64 bytes.
  const linkAtB = b.cluster.link(a.node.id)!;
  const frame = encodeFrame({ type: FrameType.PUB, topic: 'hold.x', seq: Date.now() * 4000, payload: Buffer.alloc(2_090_000, 7) });
  a.cluster.link(b.node.id)!.sendRaw(frame.subarray(0, 2_000_000));
  await until(() => budget.used >= 2_000_000, "the link's unfinished frame charged at b");

  // A TCP client on b holds as much of a frame it does not finish either: the budget is full.
  await holder(b);
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

it('a peer link paused by the input budget longer than its liveness allows is not closed as stale; its event arrives', async () => {
  // Idle holders are closed after 1.5 s, the link's pings are 200 ms apart.
  const { a, b } = await pair(1500);
  const sub = await client(b);
  clients.push(sub);
  const got: number[] = [];
  sub.subscribe('big.>', { callback: (m: Msg) => void got.push(m.data.length) });
  await sub.flush();
  await until(() => remoteInterest(a) >= 1, 'interest at a');
  const linkAtB = b.cluster.link(a.node.id)!;

  // Two TCP clients on b hold 2 MB each of frames they never finish: the budget is full.
  const budget = b.node.inputBudget;
  for (let i = 0; i < 2; i++) await holder(b);
  await until(() => budget.used >= 4_000_000, 'the holders charged');

  // A 1 MiB event from a: b's link reads part of it and waits for the budget until the holders are closed.
  const pub = await client(a);
  clients.push(pub);
  pub.publish('big.x', Buffer.alloc(1024 * 1024, 1));
  await until(() => budget.waitingCount > 0, "b's link waiting for the budget");
  await until(() => got.length === 1 || linkAtB.state === 'closed', 'the event or the link closed', 15_000);
  console.log(`link ${linkAtB.state}, ${got.length} event(s), ${budget.evictions} closed by the budget, ${budget.waits} waits`);
  expect(linkAtB.state).not.toBe('closed');
  expect(got).toEqual([1024 * 1024]);
  expect(budget.evictions).toBe(2);
});

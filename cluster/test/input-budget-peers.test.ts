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
const timers: Array<ReturnType<typeof setInterval>> = [];
afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  for (const c of raws.splice(0)) c.close();
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const n of nodes.splice(0)) await stopMeshNode(n);
});

const MiB = 1024 * 1024;

it("a peer link holding part of a frame it never finishes is charged to the node's input budget, and closed when the budget is wanted", async () => {
  const b = await startMeshNode({}, 'b', { inputBudget: 8 * MiB, inputStall: 300 });
  nodes.push(b);
  const a = await startMeshNode({ seeds: [b.peerAddr] }, 'a');
  nodes.push(a);
  await until(() => fullyMeshed([a, b]), 'mesh');
  const budget = b.node.inputBudget;

  // a's link sends 900 KB of a 1 MB PUB and never the rest (a buggy or hostile peer).
  const linkAtB = b.cluster.link(a.node.id)!;
  const frame = encodeFrame({ type: FrameType.PUB, topic: 'hold.x', seq: Date.now() * 4000, payload: Buffer.alloc(1_000_000, 7) });
  a.cluster.link(b.node.id)!.sendRaw(frame.subarray(0, 900_000));
  await until(() => budget.used >= 900_000, "the link's unfinished frame charged at b");

  // TCP clients fill the rest of b's budget the same way, and dribble on as the link does (its pings
  // and pongs arrive inside the unfinished frame); then a publisher on b needs room.
  const held = encodeFrame({ type: FrameType.PUB, topic: 'hold.y', payload: Buffer.alloc(1_000_000, 7) });
  const holders: RawClient[] = [];
  for (let i = 0; i < 8; i++) {
    const c = await RawClient.connect(b.node.port);
    raws.push(c);
    holders.push(c);
    c.sendBytes(held.subarray(0, 900_000));
  }
  let at = 900_000;
  const dribble = setInterval(() => {
    for (const c of holders) if (!c.closed) c.sendBytes(held.subarray(at, at + 50));
    at += 50;
  }, 100);
  timers.push(dribble);
  await until(() => budget.used >= budget.limit, 'the budget full');
  const sub = await client(b);
  clients.push(sub);
  const got: number[] = [];
  sub.subscribe('big.>', { callback: (m: Msg) => void got.push(m.data.length) });
  await sub.flush();
  const pub = await RawClient.connect(b.node.port);
  raws.push(pub);
  for (let i = 0; i < 4; i++) pub.pub('big.x', Buffer.alloc(1_000_000, i));
  await until(() => got.length === 4, 'four 1 MB events on b', 15_000);
  expect(pub.closed).toBe(false);

  await until(() => linkAtB.state === 'closed', 'the holding link closed', 10_000);
  clearInterval(dribble);
  expect(budget.evictions).toBeGreaterThan(0);
  // a dials again, and events cross the new link.
  await until(() => fullyMeshed([a, b]) && b.cluster.link(a.node.id) !== linkAtB, 'the link dialled again', 15_000);
  await until(() => remoteInterest(a) >= 1, 'interest at a');
  const pubA = await client(a);
  clients.push(pubA);
  pubA.publish('big.a', 'over the new link');
  await until(() => got.includes('over the new link'.length), 'an event from a');
});

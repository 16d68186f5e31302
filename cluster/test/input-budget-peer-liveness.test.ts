import { afterEach, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import type { Client, Msg } from '@meshbus/sdk';
import { RawClient, until } from '@meshbus/testkit';
import { client, fullyMeshed, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

/**
 * A peer link the input budget pauses (SPEC 9.5) is not read: the pings and
 * pongs of the other node wait in the socket. The link's own liveness took
 * that silence, which was the node's, for a dead peer: a link paused while
 * idle holders filled the budget (closed after `inputStall`) was closed as
 * stale after 3 of its ping intervals (200 ms here, 2 s by default, less
 * than the 5 s default `inputStall`), its event lost with it, and dialled
 * again: it flapped for as long as holders kept the budget full. Real nodes
 * and sockets on loopback.
 */

const nodes: TestNode[] = [];
const clients: Client[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const c of raws.splice(0)) c.close();
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const n of nodes.splice(0)) await stopMeshNode(n);
});

it('a peer link paused by the input budget longer than its liveness allows is not closed as stale; its event arrives', async () => {
  // The least budget b takes (1 MiB payloads: ~4.3 MB); idle holders are closed after 1.5 s, the link's pings are 200 ms apart.
  const b = await startMeshNode({}, 'b', { inputBudget: 4_400_000, inputStall: 1500 });
  nodes.push(b);
  const a = await startMeshNode({ seeds: [b.peerAddr] }, 'a');
  nodes.push(a);
  await until(() => fullyMeshed([a, b]), 'mesh');
  const sub = await client(b);
  clients.push(sub);
  const got: number[] = [];
  sub.subscribe('big.>', { callback: (m: Msg) => void got.push(m.data.length) });
  await sub.flush();
  await until(() => remoteInterest(a) >= 1, 'interest at a');
  const linkAtB = b.cluster.link(a.node.id)!;

  // Two TCP clients on b hold 2 MB each of frames they never finish: the budget is full.
  const budget = b.node.inputBudget;
  for (let i = 0; i < 2; i++) {
    const holder = await RawClient.connect(b.node.port);
    raws.push(holder);
    holder.sendBytes(encodeFrame({ type: FrameType.PUB, topic: 'hold.y', payload: Buffer.alloc(2_090_000, 7) }).subarray(0, 2_000_000));
  }
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

/**
 * Queue groups in a partial mesh with a cycle (links A–B, A–C, B–C, C–D):
 * a node passing a queue copy on picks among the links that announced the
 * group at the least distance (INTEREST `distance`), so the copy moves toward
 * a member (RoutingTable.pick, GroupReceivers.remoteRanks). Before, it went
 * round robin over every link that announced the group: C sent D's copies to
 * A or B as often as to D, they circled until their max hops, and ~20 % were
 * lost (counted `maxHops` at B and C) while a plain subscriber on D got all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Client, Msg } from '@meshbus/sdk';
import { until } from '@meshbus/testkit';
import { client, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
});
async function cli(t: TestNode): Promise<Client> {
  const c = await client(t);
  clients.push(c);
  return c;
}

/** The partial mesh A–B, A–C, B–C, C–D. */
async function ring(): Promise<{ a: TestNode; b: TestNode; c: TestNode; d: TestNode }> {
  const o = { mode: 'partial' as const };
  const a = await startMeshNode(o, 'A');
  nodes.push(a);
  const b = await startMeshNode({ ...o, seeds: [a.peerAddr] }, 'B');
  nodes.push(b);
  const c = await startMeshNode({ ...o, seeds: [a.peerAddr, b.peerAddr] }, 'C');
  nodes.push(c);
  const d = await startMeshNode({ ...o, seeds: [c.peerAddr] }, 'D');
  nodes.push(d);
  const up = (x: TestNode, y: TestNode): boolean => x.cluster.link(y.node.id)?.state === 'up';
  await until(() => up(a, b) && up(a, c) && up(b, c) && up(c, d), 'linked');
  return { a, b, c, d };
}

/** The distance `t` holds for the queue member of `g` that `peer` announced (undefined: none). */
function distanceVia(t: TestNode, peer: TestNode): number | undefined {
  let d: number | undefined;
  t.node.table.forEach((s) => {
    if (s.queue === 'g' && s.owner === t.cluster.link(peer.node.id)) d = s.distance;
  });
  return d;
}

function member(c: Client): string[] {
  const got: string[] = [];
  c.subscribe('pq', { queue: 'g', callback: (m: Msg) => got.push(m.string()) });
  return got;
}

async function publish(t: TestNode, total: number): Promise<void> {
  const pub = await cli(t);
  for (let i = 0; i < total; i++) pub.publish('pq', String(i));
  await pub.flush();
}

describe('queue groups in a partial mesh with a cycle', () => {
  it('the only member, three links away through a cycle, gets every event once; no copy circles', async () => {
    const { a, b, c, d } = await ring();
    const md = await cli(d);
    const got = member(md);
    await md.flush();
    // A hears of the member from C (2 links) and from B (3), C from D (1) and from A and B (farther).
    await until(() => distanceVia(a, c) === 2 && distanceVia(a, b) === 3 && distanceVia(c, d) === 1, 'distances settled');
    const total = 400;
    await publish(a, total);
    await until(() => got.length >= total || [b, c].some((n) => n.node.stats.dropped.maxHops > 0), 'delivered or dropped');
    await md.flush();
    expect(got).toHaveLength(total);
    expect(new Set(got).size).toBe(total);
    for (const n of [a, b, c, d]) expect(n.node.stats.dropped.maxHops).toBe(0);
    expect(b.node.stats.msgsIn).toBe(0); // A → C → D: B is on no shortest path
  });

  it('distances that change move the picks: a member joining nearer takes them, and when it leaves they go back', async () => {
    const { a, b, c, d } = await ring();
    const md = await cli(d);
    const gotD = member(md);
    await md.flush();
    await until(() => distanceVia(a, c) === 2 && distanceVia(a, b) === 3, 'D member known at A');
    // A member on B: B re-announces the same entry to A at distance 1 (the routing table must see it).
    const mb = await cli(b);
    const gotB: string[] = [];
    const subB = mb.subscribe('pq', { queue: 'g', callback: () => gotB.push('') });
    await mb.flush();
    await until(() => distanceVia(a, b) === 1, 'B nearer at A');
    await publish(a, 200);
    await until(() => gotB.length + gotD.length >= 200, 'first burst delivered');
    expect(gotB).toHaveLength(200); // the nearest member, on A's own link
    expect(gotD).toHaveLength(0);
    // B's member leaves: B announces the entry again, farther (through C), and A goes back to C.
    await subB.unsubscribe();
    await mb.flush();
    await until(() => distanceVia(a, b) === 3 && distanceVia(a, c) === 2, 'B farther again at A');
    const bIn = b.node.stats.msgsIn;
    await publish(a, 200);
    await until(() => gotD.length >= 200, 'second burst at D');
    await md.flush();
    expect(gotD).toHaveLength(200);
    expect(b.node.stats.msgsIn).toBe(bIn); // not sent by a stale (cached) ranking to B
    for (const n of [a, b, c, d]) expect(n.node.stats.dropped.maxHops).toBe(0);
  });
});

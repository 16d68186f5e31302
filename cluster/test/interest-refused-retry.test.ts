/**
 * Interest entries refused for room (maxPeerInterest, the leaves' half of it)
 * are asked for again once there is room (INTEREST `{resync: true}`,
 * cluster/README.md "Interest"). Replayed from nats-server #138 and #2448
 * (interest that never reaches the other server): before, a refused entry was
 * dropped for good, and a subscription made while a flood filled the bound
 * never got another node's events, even long after the flood had gone (a
 * publish on its own node still reached it).
 */
import { describe, expect, it } from 'vitest';
import { until } from '@meshbus/testkit';
import { collect, fullyMeshed, meshKit, remoteInterest, type TestNode } from './mesh-helpers.js';

const { node, cli } = meshKit();

/** Entries the hub learned from its leaves. */
function leafInterest(t: TestNode): number {
  let n = 0;
  t.node.table.forEach((s) => void (s.owner.kind === 'leaf' && n++));
  return n;
}

describe('interest refused for room', () => {
  it('full mesh: a subscription refused while a flood filled the peer\'s bound gets its events once the flood is gone', async () => {
    const a = await node({ maxPeerInterest: 100 }, 'a');
    const b = await node({ seeds: [a.peerAddr] }, 'b');
    await until(() => fullyMeshed([a, b]), 'link up');
    const flood = await cli(b);
    for (let i = 0; i < 120; i++) flood.subscribe(`fill.${i}`, { callback: () => {} });
    await flood.flush();
    await until(() => remoteInterest(a) === 100, 'a holds 100 of the 120');
    const y = await cli(b);
    const got = collect(y, 'imp.x');
    await y.flush();
    const pub = await cli(a);
    // Refused at a: its events do not leave a.
    await new Promise((r) => setTimeout(r, 200));
    pub.publish('imp.x', 'early');
    await pub.flush();
    await flood.close();
    // Room again at a: a asks b for its interest again (within ~1 s) and imp.x is routed.
    await until(() => remoteInterest(a) === 1, 'imp.x at a', 10_000);
    pub.publish('imp.x', 'late');
    await until(() => got.includes('late'), 'imp.x delivered across the link', 5000);
    expect(got).toEqual(['late']);
  });

  it("leaves: one leaf's burst that filled the leaves' half does not cut off another leaf's subscription for good", async () => {
    const SECRET = 'refused-retry';
    // Leaves together get half of maxPeerInterest: 50.
    const hub = await node({ secret: SECRET, maxPeerInterest: 100 }, 'hub');
    const l1 = await node({ secret: SECRET, mode: 'leaf', seeds: [hub.peerAddr] }, 'l1');
    const l2 = await node({ secret: SECRET, mode: 'leaf', seeds: [hub.peerAddr] }, 'l2');
    await until(() => hub.cluster.peers().filter((p) => p.state === 'up').length === 2, 'leaves up');
    const flood = await cli(l1);
    for (let i = 0; i < 60; i++) flood.subscribe(`fill.${i}`, { callback: () => {} });
    await flood.flush();
    await until(() => leafInterest(hub) === 50, 'the hub holds 50 of the 60');
    const y = await cli(l2);
    const got = collect(y, 'imp.x');
    await y.flush();
    await new Promise((r) => setTimeout(r, 200));
    expect(leafInterest(hub)).toBe(50);
    await flood.close();
    await until(() => leafInterest(hub) === 1, 'imp.x at the hub', 10_000);
    const pub = await cli(hub);
    pub.publish('imp.x', 'late');
    await until(() => got.includes('late'), 'imp.x delivered to the second leaf', 5000);
  });
});

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
import type { Client, Subscription } from '@meshbus/sdk';
import { until } from '@meshbus/testkit';
import { collect, fullyMeshed, meshKit, remoteInterest, type TestNode } from './mesh-helpers.js';

const { node, cli } = meshKit();

/** Entries the hub learned from its leaves. */
function leafInterest(t: TestNode): number {
  let n = 0;
  t.node.table.forEach((s) => void (s.owner.kind === 'leaf' && n++));
  return n;
}

/** A hub with `hubOpts` (and `secret`) and two leaves of it, linked. */
async function hubWithTwoLeaves(secret: string, hubOpts: Parameters<typeof node>[0]): Promise<[TestNode, TestNode, TestNode]> {
  const hub = await node({ secret, ...hubOpts }, 'hub');
  const l1 = await node({ secret, mode: 'leaf', seeds: [hub.peerAddr] }, 'l1');
  const l2 = await node({ secret, mode: 'leaf', seeds: [hub.peerAddr] }, 'l2');
  await until(() => hub.cluster.peers().filter((p) => p.state === 'up').length === 2, 'leaves up');
  return [hub, l1, l2];
}

/** A client of `t` subscribed to `count` topics `<prefix>.<i>`, flushed; its subscriptions. */
async function subscribedTo(t: TestNode, prefix: string, count: number): Promise<{ client: Client; subs: Subscription[] }> {
  const client = await cli(t);
  const subs = Array.from({ length: count }, (_, i) => client.subscribe(`${prefix}.${i}`, { callback: () => {} }));
  await client.flush();
  return { client, subs };
}

describe('interest refused for room', () => {
  it('full mesh: a subscription refused while a flood filled the peer\'s bound gets its events once the flood is gone', async () => {
    const a = await node({ maxPeerInterest: 100 }, 'a');
    const b = await node({ seeds: [a.peerAddr] }, 'b');
    await until(() => fullyMeshed([a, b]), 'link up');
    const { client: flood } = await subscribedTo(b, 'fill', 120);
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
    // Leaves together get half of maxPeerInterest: 50.
    const [hub, l1, l2] = await hubWithTwoLeaves('refused-retry', { maxPeerInterest: 100 });
    const { client: flood } = await subscribedTo(l1, 'fill', 60);
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

  it("a leaf's answer to the hub's request is not charged to its interest pace: its events are not held behind it", async () => {
    // A review of the first version: every answer (all 900 of the leaf's entries, most unchanged or refused again) was
    // charged to the leaf's pace (200 a second here) and held the leaf link's whole input, events too: probes 3.4 s p50.
    const [hub, l1, l2] = await hubWithTwoLeaves('refused-pace', { maxPeerInterest: 1000, leafInterestRate: 200 });
    const { subs: ones } = await subscribedTo(l1, 'one', 20);
    await until(() => leafInterest(hub) === 20, 'l1 entries');
    await subscribedTo(l2, 'two', 900);
    await until(() => leafInterest(hub) === 500, "the leaves' half full", 20_000);
    // The pace's burst refills after l2's first 900 entries.
    await new Promise((r) => setTimeout(r, 5000));
    const hs = await cli(hub);
    const lat: number[] = [];
    hs.subscribe('probe', { callback: (m) => void lat.push(Date.now() - Number(Buffer.from(m.data).toString())) });
    await hs.flush();
    const pb = await cli(l2);
    await until(async () => {
      pb.publish('probe', String(Date.now()));
      await pb.flush();
      return lat.length > 0;
    }, 'probe route', 10_000);
    lat.length = 0;
    const probe = setInterval(() => pb.publish('probe', String(Date.now())), 20);
    try {
      // l1 leaves one entry a second: room for one, so the hub asks l2 again and again.
      for (let k = 0; k < 6; k++) {
        ones[k]!.unsubscribe();
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      clearInterval(probe);
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(lat.length).toBeGreaterThan(200);
    expect(Math.max(...lat)).toBeLessThan(500);
    // The room made is taken by l2's entries, asked for again (the pace doubles while refusals come back).
    await until(() => leafInterest(hub) === 500, "the room taken by l2's entries", 40_000);
  }, 90_000);
});

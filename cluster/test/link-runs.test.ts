import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import type { PeerLink } from '../src/peer-link.js';
import { fullyMeshed, startMeshNode, stopMeshNode, stoppedPeer, type TestNode } from './mesh-helpers.js';

/**
 * A client's events whose only receivers on its node are links to other
 * nodes leave in runs (core publish-run.ts): each event's hops raised once in
 * its own bytes, then the run handed to every link as one range of the input
 * chunk (PeerLink.forwardRaisedRange). Each far receiver must get exactly what
 * one forward per event gave: every event in order, hops 1, a valid header
 * (the far node checks its CRC), nothing over its node's max payload, nothing
 * past the event's maxHops, each counted once.
 */
const nodes: TestNode[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
});

async function raw(t: TestNode): Promise<RawClient> {
  const r = await RawClient.connect(t.node.port);
  raws.push(r);
  return r;
}

const TOPIC = 'lr.x';
/** Event i: 2,000 bytes for 0 and 17 (over S's 1,024), maxHops 0 for 33 (it may cross no link), else its index. */
const big = (i: number): boolean => i === 0 || i === 17;
const local = (i: number): boolean => i === 33;

describe("a client's events for links only, in runs", () => {
  it('reach every far receiver in order, hops raised once, within each peer limit, each counted once', async () => {
    const p = await startMeshNode({}, 'p');
    nodes.push(p);
    const s = await startMeshNode({ seeds: [p.peerAddr] }, 's', { maxPayload: 1024 });
    const t = await startMeshNode({ seeds: [p.peerAddr] }, 't');
    nodes.push(s, t);
    await until(() => fullyMeshed([p, s, t]), 'full mesh');
    const [subS, subT] = [await raw(s), await raw(t)];
    subS.sub(TOPIC, 1);
    subT.sub(TOPIC, 1);
    const pub = await raw(p);
    // Interest has reached P once a probe arrives at both.
    await until(async () => {
      pub.pub(TOPIC, 'probe');
      await pub.flush();
      return subS.events(TOPIC).length > 0 && subT.events(TOPIC).length > 0;
    }, 'interest at the publisher');
    await new Promise((r) => setTimeout(r, 100)); // the last probes arrive
    const [linkS, linkT] = [p.cluster.link(s.node.id) as PeerLink, p.cluster.link(t.node.id) as PeerLink];
    const before = { sOut: linkS.msgsOut, tOut: linkT.msgsOut, tooLarge: linkS.tooLargeOut, hopsS: linkS.droppedHops, hopsT: linkT.droppedHops, s: subS.events(TOPIC).length, t: subT.events(TOPIC).length };
    const frames: Buffer[] = [];
    for (let i = 0; i < 60; i++) {
      const payload = big(i) ? Buffer.alloc(2000, i) : Buffer.from(String(i));
      frames.push(Buffer.from(encodeFrame({ type: FrameType.PUB, topic: TOPIC, payload, maxHops: local(i) ? 0 : 8 })));
    }
    pub.sendBytes(Buffer.concat(frames)); // one write: the node reads them in one chunk (or a few)
    await pub.flush();
    const want = (limit: boolean): number[] => [...Array(60).keys()].filter((i) => !local(i) && !(limit && big(i)));
    await until(() => subS.events(TOPIC).length - before.s >= want(true).length && subT.events(TOPIC).length - before.t >= want(false).length, 'events at S and T');
    await subS.flush();
    await subT.flush();
    const got = (r: RawClient, from: number): Array<[number, number]> =>
      r.events(TOPIC).slice(from).map((g) => [g.payload.length === 2000 ? g.payload[0]! : Number(g.payload.toString()), g.hops]);
    expect(got(subS, before.s)).toEqual(want(true).map((i) => [i, 1]));
    expect(got(subT, before.t)).toEqual(want(false).map((i) => [i, 1]));
    expect(linkS.msgsOut - before.sOut).toBe(want(true).length);
    expect(linkT.msgsOut - before.tOut).toBe(want(false).length);
    expect(linkS.tooLargeOut - before.tooLarge).toBe(2);
    expect([linkS.droppedHops - before.hopsS, linkT.droppedHops - before.hopsT]).toEqual([1, 1]);
    // Node-wide too, one per link skipped (stats.dropped.maxHops, meshbus_dropped_total{reason="max_hops"}).
    expect(p.node.stats.dropped.maxHops).toBe(linkS.droppedHops + linkT.droppedHops);
    expect(p.node.stats.noInterest).toBe(0);
  });
});

describe('runs and a link past its bound', () => {
  it('a peer that stopped reading: each event of a run is sent, queued or dropped on its own, and counted so', async () => {
    // A small bound (high-water mark 128 KiB) and a short stall: the publisher is held back 200 ms, then the link drops.
    const { p, peer, id } = await stoppedPeer('feed');
    nodes.push(p);
    raws.push(peer);
    const pub = await raw(p);
    const frame = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(32, 1) }));
    const chunk = Buffer.concat(Array.from({ length: 600 }, () => frame)); // ~58 KiB: runs of up to 600 events
    const link = p.cluster.link(id) as PeerLink;
    const published = 400 * 600;
    for (let i = 0; i < 400; i++) {
      pub.sendBytes(chunk);
      if (i % 10 === 9) await pub.flush(10_000);
    }
    await pub.flush(10_000);
    // Dropped events are counted one by one. Before, a run that did not fit was dropped whole and counted as one
    // event: at most one count per run, i.e. per read of the publisher's 400 writes (266 in a run of this test).
    expect(link.dropped).toBeGreaterThan(2000);
    // Every event is accounted for: taken by the link (written or queued; a queued one may be dropped later and
    // counted again), dropped, or, once the link gave up on the stuck peer, published with no receiver.
    expect(link.msgsOut + link.dropped + p.node.stats.noInterest).toBeGreaterThanOrEqual(published);
  });
});

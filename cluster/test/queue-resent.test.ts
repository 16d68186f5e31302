/**
 * A queue-group copy whose member ended on the node it reached is passed on
 * once more (SPEC 10.3, cluster/src/member-gone.ts); only that re-sent copy
 * is never passed on again, and it is told apart by its own marker (the top
 * bit of `sid` between nodes that say `resentMark`), not by its hop count:
 * an ordinary first copy crosses two links when it comes from a leaf through
 * its hub or from another region through a gateway. Before, such a copy was
 * taken as already re-sent (hops 2): dropped when its member had just ended
 * (counted `noQueueMember`), and let past the per-origin order check.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Client, Msg } from '@meshbus/sdk';
import { FrameType, decodeBody, encodeBody, encodeFrame } from '@meshbus/proto';
import { RawClient, until } from '@meshbus/testkit';
import type { PeerInfo } from '../src/index.js';
import { RESENT } from '../src/member-gone.js';
import { announced, fakePeer, fullyMeshed, meshKit, type TestNode } from './mesh-helpers.js';

const SECRET = 'queue-resent-secret';
const { node, cli, clients } = meshKit();

/** A queue member of `g` on `topic`: what it got, by payload. */
function member(c: Client, topic: string, opts: { max?: number } = {}): string[] {
  const got: string[] = [];
  c.subscribe(topic, { queue: 'g', ...opts, callback: (m: Msg) => got.push(m.string()) });
  return got;
}

/** Whether `t` has learned a queue member of `g` from each of `n` links. */
function groupLinks(t: TestNode, n: number): boolean {
  const owners = new Set<unknown>();
  t.node.table.forEach((s) => {
    if (s.queue === 'g' && s.owner.kind !== 'client') owners.add(s.owner);
  });
  return owners.size >= n;
}

describe('a first queue copy over two links whose member just ended is passed on', () => {
  it('leaf → hub → peer: every event reaches a member exactly once (before: those sent to the ended member were dropped)', async () => {
    const h = await node({}, 'H');
    const p1 = await node({ seeds: [h.peerAddr] }, 'P1');
    const p2 = await node({ seeds: [h.peerAddr] }, 'P2');
    await until(() => fullyMeshed([h, p1, p2]), 'full mesh');
    const l = await node({ mode: 'leaf', seeds: [h.peerAddr] }, 'L');
    await until(() => l.cluster.peers().some((p) => p.state === 'up'), 'leaf up');
    const c1 = await cli(p1);
    const c2 = await cli(p2);
    const got1 = member(c1, 'lq', { max: 3 });
    const got2 = member(c2, 'lq');
    await c1.flush();
    await c2.flush();
    await until(() => groupLinks(h, 2) && groupLinks(l, 1), 'both members known at H, the group at L');
    const pub = await cli(l);
    const total = 300;
    for (let i = 0; i < total; i++) pub.publish('lq', String(i));
    await pub.flush();
    await until(() => got1.length + got2.length + p1.node.stats.dropped.noQueueMember >= total, 'every event delivered or counted');
    // H went on sending to P1 until it heard that P1's member ended: those were passed on to P2.
    expect(p1.node.stats.dropped.noQueueMember).toBe(0);
    expect(got1).toHaveLength(3);
    expect(new Set([...got1, ...got2]).size).toBe(total);
    expect(got1.length + got2.length).toBe(total);
  });

  it('gateway → node → peer: the same across regions (before: dropped on the node whose member ended)', async () => {
    const y = await node({ secret: SECRET, region: 'us' }, 'Y');
    const z1 = await node({ secret: SECRET, region: 'us', seeds: [y.peerAddr] }, 'Z1');
    const z2 = await node({ secret: SECRET, region: 'us', seeds: [y.peerAddr] }, 'Z2');
    await until(() => fullyMeshed([y, z1, z2]), 'us meshed');
    const x = await node({ secret: SECRET, region: 'eu', gateways: { us: [y.peerAddr] } }, 'X');
    await until(() => x.cluster.peers().some((p) => p.state === 'up'), 'gateway up');
    const c1 = await cli(z1);
    const c2 = await cli(z2);
    const got1 = member(c1, 'gq', { max: 3 });
    const got2 = member(c2, 'gq');
    await c1.flush();
    await c2.flush();
    await until(() => groupLinks(y, 2) && groupLinks(x, 1), 'both members known at Y, the group at X');
    const pub = await cli(x);
    const total = 300;
    for (let i = 0; i < total; i++) pub.publish('gq', String(i));
    await pub.flush();
    await until(() => got1.length + got2.length + z1.node.stats.dropped.noQueueMember >= total, 'every event delivered or counted');
    expect(z1.node.stats.dropped.noQueueMember).toBe(0);
    expect(got1).toHaveLength(3);
    expect(new Set([...got1, ...got2]).size).toBe(total);
    expect(got1.length + got2.length).toBe(total);
  });
});

const origin = randomBytes(8);
/** A queue copy of `job` from a fake peer: `sid` the id the node announced, seq in the payload. */
const copy = (sid: number, hops: number, seq: number): Uint8Array =>
  encodeFrame({ type: FrameType.PUB, topic: 'job', payload: Buffer.from(String(seq)), origin, seq, hops, maxHops: 8, sid });
const pubsAt = (c: RawClient): Array<{ sid: number; hops: number; seq: number }> =>
  c.got.filter((g) => g.type === FrameType.PUB).map((g) => ({ sid: g.sid, hops: g.hops, seq: Number(g.payload.toString()) }));

describe('the re-sent marker on the wire, with a node that knows it and one that does not', () => {
  /** Node N with one queue member (max 1) on `job`, and a fake peer F that announced the group too. */
  async function setup(resentMark: boolean): Promise<{ n: TestNode; f: RawClient; me: PeerInfo; nId: number; member: RawClient }> {
    const n = await node({ secret: SECRET, pingInterval: 5000 }, 'N');
    const m = await RawClient.connect(n.node.port);
    clients.push(m);
    m.sub('job', 1, { q: 'g', max: 1 });
    await m.flush();
    const me: PeerInfo = { id: randomBytes(8).toString('hex'), name: 'F', cluster: '127.0.0.1:9', client: '127.0.0.1:9', ...(resentMark ? { resentMark: true as const } : {}) };
    const f = await fakePeer(n, me, SECRET);
    clients.push(f);
    f.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[7, 'job', 'g', 1]] }) });
    await until(() => groupLinks(n, 1), "F's member at N");
    // The id N announced to F for (job, g): what F names in a queue copy's sid.
    let nId = 0;
    await until(() => {
      for (const g of f.got) {
        if (g.type !== FrameType.INTEREST) continue;
        const body = decodeBody(g.payload) as { add?: Array<[number, string, string | null, number]> };
        for (const [id, pattern, queue] of body.add ?? []) if (pattern === 'job' && queue === 'g') nId = id;
      }
      return nId > 0;
    }, "N's interest at F");
    return { n, f, me, nId, member: m };
  }


  it('a node that knows it: a first copy with hops 2 is passed on, marked; a marked copy is delivered but never passed on', async () => {
    const { n, f, nId, member: m } = await setup(true);
    f.sendBytes(copy(nId, 2, 1000)); // the member's one event (max 1): it ends
    f.sendBytes(copy(nId, 2, 1001)); // none left here: back to F, the only other member, marked
    await until(() => pubsAt(f).length >= 1, 'the copy passed on');
    expect(pubsAt(f)[0]).toEqual({ sid: 7 + RESENT, hops: 3, seq: 1001 });
    f.sendBytes(copy(nId + RESENT, 3, 1002)); // a re-sent copy: not passed on again, counted
    await until(() => n.node.stats.dropped.noQueueMember === 1, 'the re-sent copy counted');
    expect(pubsAt(f)).toHaveLength(1);
    expect(pubsAt(m).map((p) => p.seq)).toEqual([1000]);
  });

  it('a node that does not know it: never sent the marker (hops say it), and its hops-2 copies are taken as re-sent, as before', async () => {
    const { n, f, nId } = await setup(false);
    f.sendBytes(copy(nId, 1, 1000));
    f.sendBytes(copy(nId, 1, 1001));
    await until(() => pubsAt(f).length >= 1, 'the copy passed on');
    expect(pubsAt(f)[0]).toEqual({ sid: 7, hops: 2, seq: 1001 });
    f.sendBytes(copy(nId, 2, 1002)); // by the older node's rule, re-sent: not passed on again
    await until(() => n.node.stats.dropped.noQueueMember === 1, 'counted');
    expect(pubsAt(f)).toHaveLength(1);
  });

  it('an ordinary copy that crossed two links keeps its origin\'s order; a re-sent one is exempt (before: both exempt)', async () => {
    const n = await node({ secret: SECRET, pingInterval: 5000 }, 'N');
    const m = await RawClient.connect(n.node.port);
    clients.push(m);
    m.sub('job', 1, { q: 'g' });
    await m.flush();
    const me: PeerInfo = { id: randomBytes(8).toString('hex'), name: 'F', cluster: '127.0.0.1:9', client: '127.0.0.1:9', resentMark: true };
    const f = await fakePeer(n, me, SECRET);
    clients.push(f);
    let nId = 0;
    await until(() => {
      for (const g of f.got) {
        if (g.type !== FrameType.INTEREST) continue;
        for (const [id, pattern] of (decodeBody(g.payload) as { add?: Array<[number, string]> }).add ?? []) if (pattern === 'job') nId = id;
      }
      return nId > 0;
    }, "N's interest at F");
    f.sendBytes(copy(nId, 2, 2000));
    f.sendBytes(copy(nId, 2, 1999)); // older, same origin, ordinary: dropped for order
    f.sendBytes(copy(nId + RESENT, 2, 1998)); // older, re-sent: delivered
    await until(() => pubsAt(m).length >= 2 && n.cluster.reorderedDropped >= 1, 'delivered and dropped');
    await m.flush();
    expect(pubsAt(m).map((p) => p.seq)).toEqual([2000, 1998]);
    expect(n.cluster.reorderedDropped).toBe(1);
  });
});

describe('copies passed on for an ended member take turns', () => {
  it('two other members share them (before: memberGone picked on a copy of the group, so every one went to the same member)', async () => {
    const n = await node({ secret: SECRET, pingInterval: 5000 }, 'N');
    const m = await RawClient.connect(n.node.port);
    clients.push(m);
    m.sub('job', 1, { q: 'g', max: 1 });
    await m.flush();
    const peers: RawClient[] = [];
    for (const name of ['F1', 'F2']) {
      const me: PeerInfo = { id: randomBytes(8).toString('hex'), name, cluster: '127.0.0.1:9', client: '127.0.0.1:9', resentMark: true };
      const f = await fakePeer(n, me, SECRET);
      clients.push(f);
      f.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[7, 'job', 'g', 1]] }) });
      peers.push(f);
    }
    await until(() => groupLinks(n, 2), "both fake peers' members at N");
    const [f1, f2] = peers as [RawClient, RawClient];
    const nId = await announced(f1, 'job', 'g');
    const total = 100;
    // The first ends the member (max 1); the rest find none here and are passed on, each to F1 or F2.
    for (let i = 0; i <= total; i++) f1.sendBytes(copy(nId, 1, 5000 + i));
    await until(() => pubsAt(f1).length + pubsAt(f2).length >= total, 'every copy passed on');
    const at1 = pubsAt(f1).length;
    const at2 = pubsAt(f2).length;
    expect(at1 + at2).toBe(total);
    expect(Math.min(at1, at2)).toBeGreaterThanOrEqual(total / 2 - 1);
    expect(n.node.stats.dropped.noQueueMember).toBe(0);
  });
});

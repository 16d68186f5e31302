import { describe, expect, it } from 'vitest';
import { Frame, FrameType, encodeFrame } from '@meshbus/proto';
import { RoutingTable } from '../src/routing-table.js';
import type { Subscriber, Subscription } from '../src/subscriber.js';

/**
 * A partial mesh's queue members behind peers, ranked by announced distance
 * (GroupReceivers.remoteRanks): pick takes the nearest rank with a member it
 * would take first. Before (the rank's first version, same session), the
 * nearest rank with any member: a link whose peer cannot take the payload
 * (its maxPayload: the copy is skipped and counted lost there) or a
 * backed-up one got every copy, where without ranks the other peer did. Two
 * stand-in peer receivers in a real routing table.
 */
function peer(uid: number, maxPayload: number, backedUp = false): Subscriber {
  return { kind: 'peer', uid, congested: false, maxPayload, backedUp, deliver() {}, addWaiter() {} } as unknown as Subscriber;
}

/** Who of `a` and `b` (sids 1 and 2 of group g on x, at `distance`s when given) gets 100 events of `payload` bytes. */
function pickCounts(a: Subscriber, b: Subscriber, payload: number, distance: [number, number] | [] = []): [number, number] {
  const t = new RoutingTable();
  [a, b].forEach((owner, i) => {
    const d = distance[i];
    t.add({ sid: i + 1, pattern: 'x', queue: 'g', owner, slow: 'drop', ...(d === undefined ? {} : { distance: d }) } satisfies Subscription);
  });
  const out: [number, number] = [0, 0];
  const f = encodeFrame({ type: FrameType.PUB, topic: 'x', payload: new Uint8Array(payload) });
  for (let i = 0; i < 100; i++) {
    const m = t.pick(t.route('x').groups[0]!, new Frame(f, 0, f.length));
    if (m?.owner === a) out[0]++;
    else if (m?.owner === b) out[1]++;
  }
  return out;
}

function picks(near: Subscriber, far: Subscriber, payload: number): { near: number; far: number } {
  const [n, f] = pickCounts(near, far, payload, [1, 2]);
  return { near: n, far: f };
}

describe('queue members ranked by distance', () => {
  it('the nearest that takes the event: a nearer peer that cannot take the payload is passed over', () => {
    expect(picks(peer(1, 100), peer(2, 1 << 20), 1000)).toEqual({ near: 0, far: 100 });
    expect(picks(peer(1, 1 << 20), peer(2, 1 << 20), 1000)).toEqual({ near: 100, far: 0 });
  });

  it('a backed-up nearer peer is passed over for a free one, and taken when every one is backed up', () => {
    expect(picks(peer(1, 1 << 20, true), peer(2, 1 << 20), 10)).toEqual({ near: 0, far: 100 });
    expect(picks(peer(1, 1 << 20, true), peer(2, 1 << 20, true), 10)).toEqual({ near: 100, far: 0 });
  });
});

describe('a member passed over (Subscriber.passedOver: a keyed leaf far behind on its copies)', () => {
  /** The hub's keyed leaf (local tier) and a peer's member (remote tier): who gets 100 events of `payload` bytes. */
  function leafAndPeer(leaf: Subscriber, p: Subscriber, payload: number): { leaf: number; peer: number } {
    const [l, r] = pickCounts(leaf, p, payload);
    return { leaf: l, peer: r };
  }
  const leaf = (passedOver: boolean): Subscriber =>
    ({ kind: 'leaf', uid: 9, congested: false, maxPayload: 1 << 20, backedUp: false, passedOver, deliver() {}, addWaiter() {} }) as unknown as Subscriber;

  it('gives way to a member of another tier', () => {
    expect(leafAndPeer(leaf(true), peer(2, 1 << 20), 10)).toEqual({ leaf: 0, peer: 100 });
    expect(leafAndPeer(leaf(false), peer(2, 1 << 20), 10)).toEqual({ leaf: 100, peer: 0 });
  });

  it('but not to one that cannot take the payload (before the review: 100 of 100 went to the peer link, which skipped them)', () => {
    expect(leafAndPeer(leaf(true), peer(2, 100), 1000)).toEqual({ leaf: 100, peer: 0 });
  });
});

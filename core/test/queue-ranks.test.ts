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

function picks(near: Subscriber, far: Subscriber, payload: number): { near: number; far: number } {
  const t = new RoutingTable();
  t.add({ sid: 1, pattern: 'x', queue: 'g', owner: near, slow: 'drop', distance: 1 } satisfies Subscription);
  t.add({ sid: 2, pattern: 'x', queue: 'g', owner: far, slow: 'drop', distance: 2 } satisfies Subscription);
  const out = { near: 0, far: 0 };
  const b = encodeFrame({ type: FrameType.PUB, topic: 'x', payload: new Uint8Array(payload) });
  for (let i = 0; i < 100; i++) {
    const m = t.pick(t.route('x').groups[0]!, new Frame(b, 0, b.length));
    if (m?.owner === near) out.near++;
    else if (m?.owner === far) out.far++;
  }
  return out;
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
    const t = new RoutingTable();
    t.add({ sid: 1, pattern: 'x', queue: 'g', owner: leaf, slow: 'drop' } satisfies Subscription);
    t.add({ sid: 2, pattern: 'x', queue: 'g', owner: p, slow: 'drop' } satisfies Subscription);
    const out = { leaf: 0, peer: 0 };
    const b = encodeFrame({ type: FrameType.PUB, topic: 'x', payload: new Uint8Array(payload) });
    for (let i = 0; i < 100; i++) {
      const m = t.pick(t.route('x').groups[0]!, new Frame(b, 0, b.length));
      if (m?.owner === leaf) out.leaf++;
      else if (m?.owner === p) out.peer++;
    }
    return out;
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

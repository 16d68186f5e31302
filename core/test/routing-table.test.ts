import { describe, expect, it } from 'vitest';
import { Frame, FrameType, OFF, ProtocolError, encodeFrame, resealHeader, topicHash, writeU32 } from '@meshbus/proto';
import { RoutingTable } from '../src/routing-table.js';
import type { Subscriber, Subscription } from '../src/subscriber.js';

function owner(uid: number): Subscriber {
  return { kind: 'client', uid, congested: false, deliver() {}, addWaiter() {} };
}

function frame(topic: string, hash?: number): Frame {
  const b = encodeFrame({ type: FrameType.PUB, topic, payload: new Uint8Array(4) });
  if (hash !== undefined) {
    writeU32(b, OFF.TOPIC_HASH, hash);
    resealHeader(b, 0);
  }
  return new Frame(b, 0, b.length);
}

/** What the node's decode does: the topic, or MB_ERR_BAD_HASH when the header's hash is not the topic's. */
function decode(f: Frame): string {
  if (topicHash(f.topicBytes) !== f.topicHash) throw new ProtocolError('MB_ERR_BAD_HASH', f.topic);
  return f.topic;
}

describe('RoutingTable.routeFrame', () => {
  it('never answers from the cache for a frame whose hash is not its topic’s, even one equal in the low 30 bits', () => {
    const t = new RoutingTable();
    const sub: Subscription = { sid: 1, pattern: 'orders.eu', queue: undefined, owner: owner(1), slow: 'disconnect' };
    t.add(sub);
    expect(t.routeFrame(frame('orders.eu'), decode).plain).toHaveLength(1); // cached now
    const real = topicHash(new TextEncoder().encode('orders.eu'));
    for (const wrong of [(real ^ 0x40000000) >>> 0, (real ^ 0x80000000) >>> 0, (real ^ 1) >>> 0]) {
      expect(() => t.routeFrame(frame('orders.eu', wrong), decode)).toThrow(/orders\.eu/);
    }
    // The good entry is still served.
    expect(t.routeFrame(frame('orders.eu'), decode).plain).toHaveLength(1);
  });

  it('a run of one topic is served from the cache again after a subscription change, and sees the change', () => {
    const t = new RoutingTable();
    const a = owner(1);
    const b = owner(2);
    t.add({ sid: 1, pattern: 'orders.eu', queue: undefined, owner: a, slow: 'disconnect' });
    let decoded = 0;
    const counting = (f: Frame): string => {
      decoded++;
      return decode(f);
    };
    for (let i = 0; i < 3; i++) expect(t.routeFrame(frame('orders.eu'), counting).plain).toEqual([a]);
    expect(decoded).toBe(1);
    // A subscribe in the middle of the run (another topic's, then this one's): the next event routes anew, once.
    t.add({ sid: 2, pattern: 'other', queue: undefined, owner: b, slow: 'disconnect' });
    for (let i = 0; i < 3; i++) expect(t.routeFrame(frame('orders.eu'), counting).plain).toEqual([a]);
    expect(decoded).toBe(2);
    t.add({ sid: 3, pattern: 'orders.*', queue: undefined, owner: b, slow: 'disconnect' });
    for (let i = 0; i < 3; i++) expect(t.routeFrame(frame('orders.eu'), counting).plain).toEqual([a, b]);
    expect(decoded).toBe(3);
  });

  it('routes the same with 100,000 other subscriptions (literal and wildcard) in the table', () => {
    const t = new RoutingTable();
    const me = owner(1);
    t.add({ sid: 1, pattern: 'orders.eu.created', queue: undefined, owner: me, slow: 'disconnect' });
    for (let i = 0; i < 100_000; i++) {
      const k = i % 4;
      const pattern = k === 0 ? `dev.${i}.inbox` : k === 1 ? `sensor.${i}.*` : k === 2 ? `app.${i % 1000}.>` : `orders.x${i}.created`;
      t.add({ sid: i + 2, pattern, queue: undefined, owner: owner(i + 2), slow: 'disconnect' });
    }
    for (let i = 0; i < 3; i++) expect(t.routeFrame(frame('orders.eu.created'), decode).plain).toEqual([me]);
    expect(t.routeFrame(frame('app.2.x.y'), decode).plain).toHaveLength(100);
  });
});

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Frame, FrameType, OFF, ProtocolError, encodeFrame, resealHeader, topicHash, writeU32 } from '@meshbus/proto';
import { RoutingTable } from '../src/routing-table.js';
import type { Subscriber, Subscription } from '../src/subscriber.js';
import type { Receivers } from '../src/receivers.js';

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
/** `r` without each group's round-robin position (random per route): what two routes of one topic share. */
function turnless(r: Receivers): object {
  return { ...r, groups: r.groups.map(({ next: _, ...g }) => g) };
}

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
    // A subscribe in the middle of the run: another topic's keeps the entry; this one's routes anew, once.
    t.add({ sid: 2, pattern: 'other', queue: undefined, owner: b, slow: 'disconnect' });
    for (let i = 0; i < 3; i++) expect(t.routeFrame(frame('orders.eu'), counting).plain).toEqual([a]);
    expect(decoded).toBe(1);
    t.add({ sid: 3, pattern: 'orders.*', queue: undefined, owner: b, slow: 'disconnect' });
    for (let i = 0; i < 3; i++) expect(t.routeFrame(frame('orders.eu'), counting).plain).toEqual([a, b]);
    expect(decoded).toBe(2);
  });

  it('subscriptions that come and go elsewhere keep the cached receivers of other topics; changes that match are seen at once', () => {
    // A node review found any SUB/UNSUB emptied the whole cache: a client churning its own subscriptions made
    // every publish of every other client walk the trie again (NATS updates only the entries a subscription matches).
    const t = new RoutingTable();
    const a = owner(1);
    const churner = owner(2);
    const topics = Array.from({ length: 20 }, (_, i) => `orders.eu.t${i}`);
    const sub: Subscription = { sid: 1, pattern: 'orders.eu.*', queue: undefined, owner: a, slow: 'disconnect' };
    t.add(sub);
    let decoded = 0;
    const counting = (f: Frame): string => {
      decoded++;
      return decode(f);
    };
    const first = topics.map((topic) => t.routeFrame(frame(topic), counting));
    expect(decoded).toBe(20);
    // 200 subscribe/unsubscribe pairs that match none of the topics, literal and wildcard, between publishes
    // (each topic's entry falls 40 changes behind between two of its events: within what an entry catches up with).
    for (let i = 0; i < 200; i++) {
      const other: Subscription = { sid: 100 + i, pattern: i % 2 ? `orders.us.t${i}` : `*.eu.t${i}.>`, queue: undefined, owner: churner, slow: 'disconnect' };
      t.add(other);
      t.remove(other);
      expect(t.routeFrame(frame(topics[i % 20]!), counting)).toBe(first[i % 20]);
    }
    expect(decoded).toBe(20);
    // A matching subscribe, a limit on a matching subscription, and a matching unsubscribe are each seen by the next event.
    const b: Subscription = { sid: 3, pattern: '*.eu.t7', queue: undefined, owner: churner, slow: 'disconnect' };
    t.add(b);
    expect(t.routeFrame(frame('orders.eu.t7'), counting).plain).toEqual([a, churner]);
    expect(t.routeFrame(frame('orders.eu.t8'), counting)).toBe(first[8]);
    sub.max = 5;
    t.limitChanged(sub);
    // Limited subscriptions are counted per (owner, pattern): the one pattern of `sub`'s owner.
    expect(t.routeFrame(frame('orders.eu.t8'), counting).limited.map((p) => p.owner)).toEqual([sub.owner]);
    t.remove(b);
    expect(t.routeFrame(frame('orders.eu.t7'), counting).plain).toEqual([a]);
    // Changes elsewhere, however many, leave an entry alone (before, an entry 64 changes behind was recomputed,
    // and every cached topic checked every change at its next use: bench/README "Subscriptions that come and go").
    // (A topic enters the change index at an event after a change: a topic published once pays nothing for it.)
    t.routeFrame(frame('orders.eu.t10'), counting);
    t.add({ sid: 999, pattern: 'elsewhere', queue: undefined, owner: churner, slow: 'disconnect' });
    t.routeFrame(frame('orders.eu.t10'), counting);
    const before = decoded;
    for (let i = 0; i < 100; i++) t.add({ sid: 1000 + i, pattern: `x.${i}`, queue: undefined, owner: churner, slow: 'disconnect' });
    expect(t.routeFrame(frame('orders.eu.t10'), counting).plain).toEqual([a]);
    expect(decoded).toBe(before);
    t.add({ sid: 4, pattern: 'orders.eu.t9', queue: undefined, owner: churner, slow: 'disconnect' });
    expect(new Set(t.routeFrame(frame('orders.eu.t9'), counting).plain)).toEqual(new Set([a, churner]));
    expect(t.routeFrame(frame('orders.eu.t10'), counting).plain).toEqual([a]);
    expect(decoded).toBe(before + 1);
  });

  it('a change that matches more cached topics than one walk looks at empties the index (its topics checked lazily), and routes stay right', () => {
    const t = new RoutingTable();
    const a = owner(1);
    const b = owner(2);
    t.add({ sid: 1, pattern: 'm.>', queue: undefined, owner: a, slow: 'disconnect' });
    const topics = Array.from({ length: 3000 }, (_, i) => `m.${i % 30}.${i}`);
    // Each twice, with a change between: in the index of cached topics from then on.
    for (const topic of topics) expect(t.routeFrame(frame(topic), decode).plain).toEqual([a]);
    t.add({ sid: 9, pattern: 'elsewhere', queue: undefined, owner: b, slow: 'disconnect' });
    for (const topic of topics) expect(t.routeFrame(frame(topic), decode).plain).toEqual([a]);
    let decoded = 0;
    const counting = (f: Frame): string => {
      decoded++;
      return decode(f);
    };
    // `m.*.>` matches all 3,000 cached topics (more index nodes than one change may visit).
    const wide: Subscription = { sid: 2, pattern: 'm.*.>', queue: undefined, owner: b, slow: 'disconnect' };
    t.add(wide);
    for (const topic of topics) expect(t.routeFrame(frame(topic), counting).plain).toEqual([a, b]);
    expect(decoded).toBe(3000);
    // A narrow change among them drops just its topics.
    t.add({ sid: 3, pattern: 'm.7.*', queue: undefined, owner: b, slow: 'disconnect' });
    for (const topic of topics) t.routeFrame(frame(topic), counting);
    expect(decoded).toBe(3100);
    t.remove(wide);
    expect(t.routeFrame(frame('m.7.7'), decode).plain).toEqual([a, b]);
    expect(t.routeFrame(frame('m.8.8'), decode).plain).toEqual([a]);
  });

  it('topics only one plain subscription matches share one receivers object (a run goes on across them), until another matches or it gets a max', () => {
    const t = new RoutingTable();
    const a = owner(1);
    const sub: Subscription = { sid: 1, pattern: 'dev.*.temp', queue: undefined, owner: a, slow: 'disconnect' };
    t.add(sub);
    const r1 = t.routeFrame(frame('dev.1.temp'), decode);
    expect(t.routeFrame(frame('dev.2.temp'), decode)).toBe(r1);
    expect(r1.plain).toEqual([a]);
    const b = owner(2);
    t.add({ sid: 2, pattern: 'dev.2.*', queue: undefined, owner: b, slow: 'disconnect' });
    const r2 = t.routeFrame(frame('dev.2.temp'), decode);
    expect(r2).not.toBe(r1);
    expect(new Set(r2.plain)).toEqual(new Set([a, b]));
    expect(t.routeFrame(frame('dev.1.temp'), decode)).toBe(r1);
    // A second subscription of the same connection to the same pattern, one that may drop: not the same receivers.
    const dropper: Subscription = { sid: 9, pattern: 'dev.*.temp', queue: undefined, owner: a, slow: 'drop' };
    t.add(dropper);
    t.remove(sub);
    const rDrop = t.routeFrame(frame('dev.1.temp'), decode);
    expect(rDrop).not.toBe(r1);
    expect(rDrop.plainDrop).toEqual([[9]]);
    t.remove(dropper);
    t.add(sub);
    sub.max = 3;
    t.limitChanged(sub);
    const r3 = t.routeFrame(frame('dev.1.temp'), decode);
    expect(r3.limited.map((l) => l.owner)).toEqual([a]);
    expect(t.routeFrame(frame('dev.3.temp'), decode)).not.toBe(r3);
  });

  it('topics of many tokens cannot make the index of cached topics grow past its bound; those left out still see every change', () => {
    const t = new RoutingTable();
    const a = owner(1);
    t.add({ sid: 1, pattern: 'deep.>', queue: undefined, owner: a, slow: 'disconnect' });
    // 2,000 topics of 100 tokens, each differing at the second: 200,000 index nodes if each were indexed.
    const tail = Array.from({ length: 98 }, (_, i) => `k${i}`).join('.');
    const topics = Array.from({ length: 2000 }, (_, i) => `deep.u${i}.${tail}`);
    for (const topic of topics) t.routeFrame(frame(topic), decode);
    t.add({ sid: 9, pattern: 'elsewhere', queue: undefined, owner: a, slow: 'disconnect' });
    for (const topic of topics) t.routeFrame(frame(topic), decode);
    const index = (t as unknown as { cache: { index: { nodes: number } } }).cache.index;
    expect(index.nodes).toBeGreaterThan(60_000);
    expect(index.nodes).toBeLessThanOrEqual(65_536);
    const b = owner(2);
    t.add({ sid: 2, pattern: `deep.u1999.${tail}`, queue: undefined, owner: b, slow: 'disconnect' });
    t.add({ sid: 3, pattern: 'deep.u0.>', queue: undefined, owner: b, slow: 'disconnect' });
    expect(turnless(t.routeFrame(frame(topics[1999]!), decode))).toEqual(turnless(t.route(topics[1999]!)));
    expect(t.routeFrame(frame(topics[1999]!), decode).plain).toHaveLength(2);
    expect(t.routeFrame(frame(topics[0]!), decode).plain).toHaveLength(2);
    expect(t.routeFrame(frame(topics[1000]!), decode).plain).toEqual([a]);
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

  it('property: through any subscribes, unsubscribes and limits, a cached answer equals a fresh route', () => {
    const tok = fc.constantFrom('a', 'b', 'c');
    const pattern = fc
      .tuple(fc.array(fc.oneof(tok, fc.constant('*')), { minLength: 1, maxLength: 3 }), fc.boolean())
      .map(([ts, rest]) => (rest ? [...ts.slice(0, -1), '>'] : ts).join('.'));
    const topics = ['a', 'a.b', 'b.a', 'a.b.c', 'c.c.c', 'a.a'];
    // One op: add (or remove, when there) subscription k of owner o on a pattern, or limit it; then route a topic.
    const op = fc.tuple(pattern, fc.nat({ max: 2 }), fc.nat({ max: 9 }), fc.constantFrom('toggle', 'toggle', 'limit'), fc.constantFrom(...topics));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const t = new RoutingTable();
        const owners = [owner(1), owner(2), owner(3)];
        const subs = new Map<string, Subscription>();
        for (const [p, o, k, what, topic] of ops) {
          const key = `${p}|${o}|${k}`;
          const had = subs.get(key);
          if (what === 'limit' && had) {
            had.max = (had.max ?? 0) + 1;
            t.limitChanged(had);
          } else if (had) {
            t.remove(had);
            subs.delete(key);
          } else {
            const sub: Subscription = { sid: k, pattern: p, queue: k > 6 ? 'q' : undefined, owner: owners[o]!, slow: k % 2 ? 'drop' : 'disconnect' };
            t.add(sub);
            subs.set(key, sub);
          }
          const got = t.routeFrame(frame(topic), decode);
          expect(turnless(got), topic).toEqual(turnless(t.route(topic)));
        }
        for (const topic of topics) expect(turnless(t.routeFrame(frame(topic), decode)), topic).toEqual(turnless(t.route(topic)));
      }),
      { numRuns: 300 },
    );
  });
});

// An owner's entries are kept as one entry, then a Map from its second pattern (owner-patterns.ts): every step
// of that change must route, limit and remove the right subscription.
describe('RoutingTable: one owner from one pattern to many and back', () => {
  it('routes each pattern while the owner holds one, two, then one again, and forgets them all', () => {
    const t = new RoutingTable();
    const a = owner(1);
    const s1: Subscription = { sid: 1, pattern: 'orders.eu', queue: undefined, owner: a, slow: 'disconnect' };
    const s2: Subscription = { sid: 2, pattern: 'orders.*', queue: undefined, owner: a, slow: 'disconnect' };
    const s3: Subscription = { sid: 3, pattern: 'fx.>', queue: undefined, owner: a, slow: 'disconnect' };
    const to = (topic: string): number => t.routeFrame(frame(topic), decode).plain.length;
    t.add(s1);
    expect([to('orders.eu'), to('orders.us'), to('fx.eur')]).toEqual([1, 0, 0]);
    t.add(s2);
    t.add(s3);
    expect([to('orders.eu'), to('orders.us'), to('fx.eur')]).toEqual([1, 1, 1]);
    expect(t.size).toBe(3);
    // The first pattern leaves while the others stay: they still route; removing it twice changes nothing.
    t.remove(s1);
    t.remove(s1);
    expect([to('orders.eu'), to('orders.us'), to('fx.eur')]).toEqual([1, 1, 1]); // orders.eu by orders.*
    t.remove(s2);
    expect([to('orders.eu'), to('orders.us'), to('fx.eur')]).toEqual([0, 0, 1]);
    // Back to one pattern, then a second subscription (sid) on it: one entry, two subscriptions.
    const s4: Subscription = { sid: 4, pattern: 'fx.>', queue: undefined, owner: a, slow: 'disconnect' };
    t.add(s4);
    expect(t.size).toBe(2);
    expect(t.routeFrame(frame('fx.eur'), decode).plain).toEqual([a]);
    t.remove(s3);
    expect(to('fx.eur')).toBe(1);
    t.remove(s4);
    expect([to('orders.eu'), to('orders.us'), to('fx.eur')]).toEqual([0, 0, 0]);
    expect(t.size).toBe(0);
    // Nothing held for the owner: it starts again from one entry.
    t.add(s1);
    expect(to('orders.eu')).toBe(1);
  });

  it('two owners on the same pattern keep apart as each moves between one pattern and many', () => {
    const t = new RoutingTable();
    const [a, b] = [owner(1), owner(2)];
    const sa: Subscription = { sid: 1, pattern: 'x.*', queue: undefined, owner: a, slow: 'disconnect' };
    const sb: Subscription = { sid: 1, pattern: 'x.*', queue: undefined, owner: b, slow: 'disconnect' };
    const sb2: Subscription = { sid: 2, pattern: 'y', queue: undefined, owner: b, slow: 'disconnect' };
    t.add(sa);
    t.add(sb);
    t.add(sb2);
    expect(t.routeFrame(frame('x.1'), decode).plain).toEqual([a, b]);
    t.remove(sb);
    expect(t.routeFrame(frame('x.1'), decode).plain).toEqual([a]);
    expect(t.routeFrame(frame('y'), decode).plain).toEqual([b]);
    // A subscription of another owner on the pattern does not remove this owner's entry.
    t.remove({ ...sa, owner: b });
    expect(t.routeFrame(frame('x.1'), decode).plain).toEqual([a]);
  });
});

describe('RoutingTable: what an entry keeps only when it is needed', () => {
  const sub = (uid: number, sid: number, pattern: string, extra: Partial<Subscription> = {}): Subscription => ({ sid, pattern, queue: undefined, owner: owner(uid), slow: 'disconnect', ...extra });

  it('local interest is counted from the table when a listener comes, kept while one listens, and right again after the last leaves', () => {
    const t = new RoutingTable();
    const a = sub(1, 1, 'a.b');
    const q = sub(2, 1, 'a.b', { queue: 'g' });
    t.add(a);
    t.add(q);
    t.add(sub(3, 1, 'x.>'));
    const sorted = () => t.localInterest().map((i) => `${i.pattern}|${i.queue ?? ''}`).sort();
    expect(sorted()).toEqual(['a.b|', 'a.b|g', 'x.>|']);
    const changes: string[] = [];
    const stop = t.onInterest((c) => changes.push(`${c.op}${c.pattern}|${c.queue ?? ''}`));
    const a2 = sub(4, 1, 'a.b');
    t.add(a2); // a.b is held already: no change
    t.remove(a);
    t.remove(a2); // the last a.b: withdrawn
    t.add(sub(5, 1, 'new.one'));
    expect(changes).toEqual(['-a.b|', '+new.one|']);
    stop();
    t.remove(q);
    expect(sorted()).toEqual(['new.one|', 'x.>|']);
    const again: string[] = [];
    t.onInterest((c) => again.push(`${c.op}${c.pattern}`));
    t.add(sub(6, 1, 'x.>'));
    t.add(sub(7, 1, 'y'));
    expect(again).toEqual(['+y']);
  });

  it('an owner\'s plain deliveries are a drop tag only while all its subscriptions on the pattern are \'drop\' ones', () => {
    const t = new RoutingTable();
    const firm = sub(1, 1, 'p');
    const drop1: Subscription = { ...firm, sid: 2, slow: 'drop' };
    const drop2: Subscription = { ...drop1, sid: 3 };
    const tag = () => t.routeFrame(frame('p'), decode).plainDrop[0];
    t.add(drop1);
    expect(tag()).toEqual([2]);
    t.add(firm);
    expect(tag()).toBeUndefined();
    t.add(drop2);
    expect(tag()).toBeUndefined();
    t.remove(firm);
    expect(tag()).toEqual([2, 3]);
    t.remove(drop1);
    expect(tag()).toEqual([3]);
    t.remove(drop2);
    expect(t.routeFrame(frame('p'), decode).plain).toHaveLength(0);
    t.add(firm);
    expect(tag()).toBeUndefined();
    expect(t.size).toBe(1);
  });
});

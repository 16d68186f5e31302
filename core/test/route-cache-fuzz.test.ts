import { describe, expect, it } from 'vitest';
import { Frame, FrameType, encodeFrame } from '@meshbus/proto';
import { RoutingTable, type Receivers } from '../src/routing-table.js';
import type { Subscriber, Subscription } from '../src/subscriber.js';

function owner(uid: number): Subscriber {
  return { kind: uid % 5 === 0 ? 'peer' : 'client', uid, clientId: `c${uid}`, congested: false, deliver() {}, addWaiter() {} } as Subscriber;
}
function frame(topic: string): Frame {
  const b = encodeFrame({ type: FrameType.PUB, topic, payload: new Uint8Array(4) });
  return new Frame(b, 0, b.length);
}
const decode = (f: Frame): string => f.topic;
function norm(r: Receivers): string {
  return JSON.stringify({
    plain: r.plain.map((o) => o.uid).sort(),
    drop: r.plain.map((o, i) => `${o.uid}:${JSON.stringify(r.plainDrop[i])}`).sort(),
    groups: r.groups.map((g) => `${g.name}:${[...g.local, ...g.remote, ...g.far].map((s) => `${s.owner.uid}/${s.sid}`).sort().join(',')}`).sort(),
    limited: r.limited.map((s) => `${s.owner.uid}/${s.sid}`).sort(),
    links: r.linksOnly,
  });
}
let seed = 12345;
const rnd = (n: number): number => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
};

// Random subscribes, unsubscribes, limits and sweeps (clients' wide subscriptions, peers', queue groups,
// inboxes) over 3,000 topics, enough for changes too wide for the index of cached topics
// (receivers-cache.ts): every cached answer must equal a fresh route.
describe('the route cache against fresh routes', () => {
  it('through random changes of every kind, a cached answer equals an uncached one', () => {
    const toks = ['a', 'b', 'c', 'd', '_INBOX', 'c1', 'c2'];
    const topics: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const n = 1 + rnd(5);
      topics.push(Array.from({ length: n }, () => toks[rnd(toks.length)]).join('.'));
    }
    const pats = (): string => {
      const n = 1 + rnd(4);
      const t = Array.from({ length: n }, () => (rnd(4) === 0 ? '*' : toks[rnd(4)]!));
      if (rnd(5) === 0) t[t.length - 1] = '>';
      return t.join('.');
    };
    let compared = 0;
    let mismatch: string | undefined;
    for (let round = 0; round < 6 && mismatch === undefined; round++) {
      const t = new RoutingTable();
      const live: Subscription[] = [];
      let now = 0;
      for (let step = 0; step < 20000; step++) {
        const k = rnd(100);
        if (k < 4) {
          const uid = 1 + rnd(6);
          const sub: Subscription = { sid: 1 + rnd(1000), pattern: pats(), queue: rnd(4) === 0 ? `q${rnd(2)}` : undefined, owner: owner(uid), slow: rnd(2) ? 'drop' : 'disconnect' };
          t.add(sub);
          live.push(sub);
        } else if (k < 8 && live.length) {
          const s = live.splice(rnd(live.length), 1)[0]!;
          t.remove(s);
        } else if (k < 9 && live.length) {
          const s = live[rnd(live.length)]!;
          if (s.max === undefined) {
            s.max = 5;
            s.delivered = 0;
            t.limitChanged(s);
          }
        } else if (k < 10) {
          now += 600;
          t.sweepCache(now);
        } else {
          const topic = rnd(3) === 0 ? topics[rnd(20)]! : topics[rnd(topics.length)]!;
          const got = norm(t.routeFrame(frame(topic), decode));
          const want = norm(t.route(topic));
          compared++;
          if (got !== want) {
            mismatch = `round ${round} step ${step} ${topic}: ${got} vs ${want}`;
            break;
          }
        }
      }
    }
    expect(mismatch).toBeUndefined();
    // ~90 % of 120,000 steps route a topic: the comparisons really ran.
    expect(compared).toBeGreaterThan(100_000);
  }, 120_000);
});

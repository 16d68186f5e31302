import { describe, expect, it } from 'vitest';
import { Frame, FrameType, encodeFrame } from '@meshbus/proto';
import { RoutingTable } from '../../src/routing-table.js';
import type { Subscriber, Subscription } from '../../src/subscriber.js';

/**
 * The route cache drops, at a subscription change, the cached topics the
 * change's pattern matches, found through an index of them (receivers-cache.ts).
 * A change whose search looks at more than 1,024 index tokens (`dev.*.hum`
 * over thousands of cached devices, `*.*.zz`: matching nothing) emptied the
 * whole cache: any client subscribing and unsubscribing one such pattern in a
 * loop made every topic in flight a cache miss (a decode, a trie walk, an
 * entry) at its next event. With 12,000 topics, a SUB+UNSUB per round of one
 * event each: 37 ms a round against 10 ms before the index (b6ac1a5), 4 ms
 * without the churn. Found by the eleventh session's hostile review. Counted
 * here as misses (decodes), which the churn must not cause at all.
 */

function owner(uid: number): Subscriber {
  return { kind: 'client', uid, clientId: `c${uid}`, congested: false, deliver() {}, addWaiter() {} };
}
const sub = (sid: number, pattern: string, uid: number): Subscription => ({ sid, pattern, queue: undefined, owner: owner(uid), slow: 'disconnect' });
function frame(topic: string): Frame {
  const b = encodeFrame({ type: FrameType.PUB, topic, payload: new Uint8Array(4) });
  return new Frame(b, 0, b.length);
}

describe('the route cache under subscriptions too wide for its index', () => {
  it('a SUB and UNSUB matching no cached topic, whatever it looks at, makes no topic in flight a miss; a matching one still changes routes', () => {
    const t = new RoutingTable();
    t.add(sub(1, 'dev.*.temp', 1));
    const frames = Array.from({ length: 4000 }, (_, i) => frame(`dev.${i}.temp`));
    let misses = 0;
    const decode = (f: Frame): string => {
      misses++;
      return f.topic;
    };
    const round = (): number => {
      const before = misses;
      let wrong = 0;
      for (const f of frames) if (t.routeFrame(f, decode).plain.length !== 1) wrong++;
      expect(wrong).toBe(0);
      return misses - before;
    };
    round();
    round(); // every topic indexed: its first hit after a change (none yet) or kept lazily
    const churn = [sub(2, '*.*.zz', 2), sub(3, 'dev.*.hum', 3), sub(4, 'dev.>', 4)];
    for (let r = 0; r < 20; r++) {
      t.add(churn[0]!);
      t.remove(churn[0]!);
      t.add(churn[1]!);
      t.remove(churn[1]!);
      expect(round()).toBe(0);
    }
    // A wide change that does match: every route sees it, then sees it go.
    t.add(churn[2]!);
    expect(frames.filter((f) => t.routeFrame(f, decode).plain.length !== 2)).toEqual([]);
    t.add(churn[1]!);
    t.remove(churn[2]!);
    expect(frames.filter((f) => t.routeFrame(f, decode).plain.length !== 1)).toEqual([]);
  });
});

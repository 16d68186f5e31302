import { describe, expect, it } from 'vitest';
import { Frame, FrameType, encodeFrame } from '@meshbus/proto';
import { RoutingTable } from '../../src/routing-table.js';
import type { Subscriber, Subscription } from '../../src/subscriber.js';

/**
 * A subscription change searches the index of cached topics for the ones its
 * pattern matches (receivers-cache.ts), looking at up to MAX_VISIT tokens of
 * it. At 1,024, a pattern like `dev.*.h<i>` (one of a client's SUBs, or a
 * peer's interest) over 1,000 cached devices looked at all of them each time,
 * matching none: 11-13 µs of table work per change against 2-4 µs with
 * nothing cached (and at b6ac1a5), so a peer link going down with 100,000
 * learned subscriptions, or a client flooding SUBs, held the event loop ~4 ×
 * longer. Found by the eleventh session's hostile review. Measured in-process
 * (CPU per change, a ratio), the best of three rounds.
 */

function owner(uid: number): Subscriber {
  return { kind: 'peer', uid, congested: false, deliver() {}, addWaiter() {} };
}
const sub = (sid: number, pattern: string, uid: number): Subscription => ({ sid, pattern, queue: undefined, owner: owner(uid), slow: 'disconnect' });
function frame(topic: string): Frame {
  const b = encodeFrame({ type: FrameType.PUB, topic, payload: new Uint8Array(4) });
  return new Frame(b, 0, b.length);
}

/** CPU µs per subscription change (add or remove of `dev.*.h<i>`, matching nothing) with `cached` devices' topics cached and indexed. */
function perChange(cached: number): number {
  const t = new RoutingTable();
  t.add(sub(1, 'dev.*.temp', 1));
  const frames = Array.from({ length: cached }, (_, i) => frame(`dev.${i}.temp`));
  // Routed, then hit after a change: in the index from then on.
  for (let k = 0; k < 3; k++) {
    for (const f of frames) t.routeFrame(f, (x) => x.topic);
    t.add(sub(2 + k, `other.${k}`, 1));
  }
  const churn = Array.from({ length: 5000 }, (_, i) => sub(10 + i, `dev.*.h${i}`, 2));
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const t0 = process.cpuUsage();
    for (const s of churn) t.add(s);
    for (const s of churn) t.remove(s);
    const u = process.cpuUsage(t0);
    best = Math.min(best, (u.user + u.system) / (2 * churn.length));
  }
  return best;
}

describe('the cost of a subscription change with many topics cached', () => {
  it('a change matching no cached topic costs about the same with 1,000 cached devices its pattern spans as with none', () => {
    perChange(0); // warm-up
    const none = perChange(0);
    const many = perChange(1000);
    // A complexity check, not a time limit: a bounded search gives a ratio near 1; 1,024 tokens looked at gave 3-5.
    expect(many / none).toBeLessThan(4);
  }, 120_000);
});

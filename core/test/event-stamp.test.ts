import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Frame, FrameType, OFF, checkHeader, encodeFrame, readU64, resealHeader, writeU32, writeU64 } from '@meshbus/proto';
import { EventStamp } from '../src/event-stamp.js';

/** The stamp as a full reseal would make it (the reference). */
function reference(b: Uint8Array, origin: Uint8Array, seq: number, now: number): void {
  b.set(origin, OFF.ORIGIN);
  writeU64(b, OFF.SEQ, seq);
  if (readU64(b, OFF.TIMESTAMP) === 0) writeU64(b, OFF.TIMESTAMP, now);
  writeU32(b, OFF.SID, 0);
  resealHeader(b, 0);
}

describe('EventStamp', () => {
  it('writes what a full reseal would, for client frames with and without origin, seq, timestamp and sid, across high-word changes of the sequence', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 2 ** 53 - 1000 }),
        fc.array(fc.record({ origin: fc.option(fc.uint8Array({ minLength: 8, maxLength: 8 })), seq: fc.oneof(fc.constant(0), fc.nat()), ts: fc.option(fc.nat()), sid: fc.oneof(fc.constant(0), fc.nat()) }), { minLength: 1, maxLength: 20 }),
        (origin, start, events) => {
          // Starting just below a high-word boundary now and then.
          const first = start % 3 === 0 ? Math.floor(start / 2 ** 32) * 2 ** 32 + 2 ** 32 - 3 : start;
          const began = Date.now();
          const st = new EventStamp(origin, first);
          let seq = first;
          for (const e of events) {
            const b = encodeFrame({ type: FrameType.PUB, topic: 'a.b', payload: new Uint8Array([1]), origin: e.origin ?? undefined, seq: e.seq, timestamp: e.ts ?? 0, sid: e.sid });
            const want = b.slice();
            const now = Date.now();
            st.stamp(new Frame(b, 0, b.length));
            reference(want, origin, ++seq, now);
            // The stamp reads the clock once per turn (at least every 256 stamps): a time
            // since this property run began, compared apart.
            if (!e.ts) {
              const ts = readU64(b, OFF.TIMESTAMP);
              expect(ts).toBeGreaterThanOrEqual(began);
              expect(ts).toBeLessThanOrEqual(Date.now());
              writeU64(want, OFF.TIMESTAMP, ts);
            }
            resealHeader(want, 0);
            expect([...b]).toEqual([...want]);
            expect(checkHeader(b, 0, 1 << 20)).toBe(0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stamps a run of fresh headers (as the SDK sends them) across the sequence carries of its low byte, low word and high word, with the time of the turn', async () => {
    const origin = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]);
    // 2 * 256 + 40 events starting 300 below a high-word boundary: every cached delta changes at least once.
    const first = 7 * 2 ** 32 - 300;
    const st = new EventStamp(origin, first);
    for (let turn = 0; turn < 2; turn++) {
      const before = Date.now();
      for (let i = 1; i <= 552; i++) {
        const b = encodeFrame({ type: FrameType.PUB, topic: 'x.y', payload: new Uint8Array([i & 0xff]) });
        const want = b.slice();
        st.stamp(new Frame(b, 0, b.length));
        const ts = readU64(b, OFF.TIMESTAMP);
        expect(ts).toBeGreaterThanOrEqual(before);
        expect(ts).toBeLessThanOrEqual(Date.now());
        reference(want, origin, first + turn * 552 + i, ts);
        expect([...b]).toEqual([...want]);
        expect(checkHeader(b, 0, 1 << 20)).toBe(0);
      }
      // The next turn reads the clock again.
      await new Promise((r) => setTimeout(r, 5));
    }
  });
});

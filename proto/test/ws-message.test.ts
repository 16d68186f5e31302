import { describe, expect, it } from 'vitest';
import { BATCH_BYTES, FrameType, WS_LARGE_FRAME, WS_MESSAGE_BYTES, encodeFrame, messageEnd, messageLimit } from '../src/index.js';

/** Whole PUB frames of `payload` bytes each, back to back, and their ends. */
function frames(payloads: number[]): { buf: Uint8Array; ends: number[] } {
  const parts = payloads.map((n) => encodeFrame({ type: FrameType.PUB, topic: 't', payload: new Uint8Array(n) }));
  const buf = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  const ends: number[] = [];
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    ends.push((o += p.length));
  }
  return { buf, ends };
}

/** The messages `messageEnd` cuts `buf` into, as [start, end) pairs. */
function cuts(buf: Uint8Array): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0, e = 0; s < buf.length; s = e) out.push([s, (e = messageEnd(buf, s, buf.length))]);
  return out;
}

describe('WebSocket messages cut between frames (SPEC 2)', () => {
  it('messageLimit: 16 KiB less a header for a frame of 1 KiB or more, 64 KiB less a header below', () => {
    expect(messageLimit(WS_LARGE_FRAME)).toBe(WS_MESSAGE_BYTES);
    expect(messageLimit(WS_LARGE_FRAME - 1)).toBe(BATCH_BYTES);
    expect(WS_MESSAGE_BYTES).toBe(16 * 1024 - 14);
    expect(BATCH_BYTES).toBe(64 * 1024 - 14);
  });

  it('large frames: messages within WS_MESSAGE_BYTES, cut at frame ends, none empty', () => {
    const { buf, ends } = frames(Array.from({ length: 40 }, () => 4000));
    const m = cuts(buf);
    expect(m.every(([s, e]) => e - s <= WS_MESSAGE_BYTES && e > s && ends.includes(e))).toBe(true);
    // 4 frames of 4,065 bytes fit in 16,370, a 5th does not.
    expect(m[0]![1]).toBe(ends[3]);
  });

  it('small frames: messages of up to BATCH_BYTES', () => {
    const { buf, ends } = frames(Array.from({ length: 1000 }, () => 100));
    const m = cuts(buf);
    expect(m.every(([s, e]) => e - s <= BATCH_BYTES && ends.includes(e))).toBe(true);
    expect(m[0]![1] - m[0]![0]).toBeGreaterThan(BATCH_BYTES - 200);
  });

  it('a frame larger than the limit goes alone; a message already holding bytes is sent first (start returned)', () => {
    const { buf, ends } = frames([100, 70_000, 100]);
    expect(cuts(buf).map(([, e]) => e)).toEqual([ends[0], ends[1], ends[2]]);
    const big = frames([20_000]);
    expect(messageEnd(big.buf, 0, big.buf.length)).toBe(big.buf.length);
    expect(messageEnd(big.buf, 0, big.buf.length, 10)).toBe(0);
    const small = frames([100, 100]);
    expect(messageEnd(small.buf, 0, small.buf.length, BATCH_BYTES - small.ends[0]!)).toBe(small.ends[0]);
  });
});

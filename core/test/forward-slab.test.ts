import { describe, expect, it } from 'vitest';
import { FrameType, Frame, OFF, checkHeader, encodeFrame } from '@meshbus/proto';
import { ForwardSlab } from '../src/forward-slab.js';
import { forwardedHeader } from '../src/connection.js';
import { TickBatch } from '../src/tick-batch.js';

function frames(sizes: number[]): Frame[] {
  const parts = sizes.map((n, i) => encodeFrame({ type: FrameType.PUB, topic: `t.${i}`, payload: new Uint8Array(n).fill(i + 1) }));
  const chunk = Buffer.concat(parts);
  const out: Frame[] = [];
  let at = 0;
  for (const p of parts) {
    out.push(new Frame(chunk, at, at + p.length));
    at += p.length;
  }
  return out;
}

describe('ForwardSlab', () => {
  it('gives the bytes forwardedHeader + the rest would, with a valid CRC', () => {
    const slab = new ForwardSlab();
    for (const f of frames([0, 16, 900, 959, 960, 4096, 70_000])) {
      const [head, tail] = slab.forward(f, 7, 3);
      const got = Buffer.concat(tail ? [head, tail] : [head]);
      const want = Buffer.concat([forwardedHeader(f, 7, 3), f.buf.subarray(f.start + 64, f.end)]);
      expect(got.equals(want)).toBe(true);
      expect(got[OFF.HOPS]).toBe(3);
      expect(checkHeader(got, 0, 1 << 20)).toBe(0);
      // The input frame itself is untouched.
      expect(f.hops).toBe(0);
      expect(f.sid).toBe(0);
    }
  });

  it('lays small forwarded events back to back, so a tick sends them as one chunk', () => {
    const slab = new ForwardSlab();
    const batch = new TickBatch(() => {});
    const fs = frames(Array.from({ length: 50 }, (_, i) => i * 10));
    for (const f of fs) {
      const [head, tail] = slab.forward(f, 0, 1);
      expect(tail).toBeUndefined();
      batch.add(head);
    }
    const out = batch.take();
    expect(out).toHaveLength(1);
    expect(out[0]!.length).toBe(fs.reduce((n, f) => n + f.size, 0));
  });

  it('starts a new slab when one is full, never overwriting what it handed out', () => {
    const slab = new ForwardSlab();
    const fs = frames(Array.from({ length: 200 }, () => 900));
    const handed = fs.map((f) => slab.forward(f, 0, 1)[0]);
    const copies = handed.map((h) => Buffer.from(h));
    fs.forEach((f) => slab.forward(f, 5, 2));
    handed.forEach((h, i) => expect(Buffer.from(h).equals(copies[i]!)).toBe(true));
  });
});

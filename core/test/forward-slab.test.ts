import { describe, expect, it } from 'vitest';
import { FrameType, Frame, OFF, checkHeader, encodeFrame } from '@meshbus/proto';
import { ForwardSlab } from '../src/forward-slab.js';
import { forwardedHeader } from '../src/connection.js';
import { TickBatch } from '../src/tick-batch.js';
import { OutboundQueue } from '../src/outbound-queue.js';
import type { Transport } from '../src/transport.js';

/** A queue over a wire that gathers what it is given in a TickBatch (as TcpTransport does), never backed up. */
function wire(): { out: OutboundQueue; batch: TickBatch } {
  const batch = new TickBatch(() => {});
  const t: Transport = {
    remote: 'test',
    kind: 'tcp',
    buffered: 0,
    write: (c, tail) => {
      batch.add(c);
      if (tail !== undefined) batch.add(tail);
    },
    writeRange: (b, s, e) => batch.addRange(b, s, e),
    end() {},
    destroy() {},
    pause() {},
    resume() {},
  };
  return { out: new OutboundQueue(t, 1 << 30, 1 << 30, 'drop', { overflow: () => {} }), batch };
}

/** Forwards `f` through a fresh queue and returns the bytes that reached the wire, whole. */
function forwarded(slab: ForwardSlab, f: Frame, sid: number, hops: number): Buffer {
  const { out, batch } = wire();
  expect(slab.forward(f, sid, hops, out)).toBe(true);
  return Buffer.concat(batch.take());
}

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
      const got = forwarded(slab, f, 7, 3);
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
    const { out: queue, batch } = wire();
    const fs = frames(Array.from({ length: 50 }, (_, i) => i * 10));
    for (const f of fs) expect(slab.forward(f, 0, 1, queue)).toBe(true);
    const out = batch.take();
    expect(out).toHaveLength(1);
    expect(out[0]!.length).toBe(fs.reduce((n, f) => n + f.size, 0));
  });

  it('starts a new slab when one is full, never overwriting what it handed out', () => {
    const slab = new ForwardSlab();
    const fs = frames(Array.from({ length: 200 }, () => 900));
    const { out, batch } = wire();
    for (const f of fs) slab.forward(f, 0, 1, out);
    // Views of what went to the wire (as a socket holds them), and copies of their bytes then.
    const handed = batch.take();
    const copies = handed.map((h) => Buffer.from(h));
    expect(handed.length).toBeGreaterThan(1);
    fs.forEach((f) => forwarded(slab, f, 5, 2));
    handed.forEach((h, i) => expect(Buffer.from(h).equals(copies[i]!)).toBe(true));
  });
});

import { expect, it } from 'vitest';
import { FrameType } from '../src/constants.js';
import { encodeFrame } from '../src/frame-encoder.js';
import { FrameDecoder } from '../src/frame-decoder.js';

// FrameDecoder's `room` (a node's input budget, SPEC 9.5): a split frame's
// buffer grows ahead of what it must hold only within the room given, and
// decodes the same bytes whatever the room.
it.each([0, 1000, 1 << 20, Infinity])('with room %d a frame split into reads decodes whole, its buffer at most the bytes held plus the room', (room) => {
  const payload = Uint8Array.from({ length: 300_000 }, (_, i) => i & 0xff);
  const bytes = encodeFrame({ type: FrameType.PUB, topic: 'split.x', payload });
  const d = new FrameDecoder({ maxFrameLength: 1 << 21, room: () => room });
  const got: Uint8Array[] = [];
  let prevHeld = 0;
  for (let at = 0; at < bytes.length; at += 7_000) {
    d.push(bytes.subarray(at, Math.min(bytes.length, at + 7_000)), (f) => got.push(Uint8Array.from(f.payload)), () => expect.fail('no error'));
    if (d.buffered > 0) {
      // Growing by doubling at most, and never past what is held plus the room it had.
      expect(d.held).toBeGreaterThanOrEqual(d.buffered);
      if (d.held > prevHeld) expect(d.held).toBeLessThanOrEqual(Math.max(d.buffered, prevHeld + room));
      prevHeld = d.held;
    }
  }
  expect(got).toHaveLength(1);
  expect(Buffer.from(got[0]!).equals(Buffer.from(payload))).toBe(true);
  expect(d.held).toBe(0);
});

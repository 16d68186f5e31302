import { expect, it } from 'vitest';
import { FIXED_SIZE, FrameType, encodeFrame } from '@meshbus/proto';
import { eventsIn, eventsPast } from '../src/unsent-events.js';

/**
 * What a TCP transport counts as lost at a close (unsent-events.ts): events
 * (PUB, REQ) among the bytes it still holds, control frames not, a frame
 * handed over as a header and the rest in two chunks counted once, and only
 * frames that end past what the system took.
 */
const pub = (n: number): Uint8Array => encodeFrame({ type: FrameType.PUB, topic: 't', payload: new Uint8Array(n) });
const req = encodeFrame({ type: FrameType.REQ, topic: 't', payload: new Uint8Array(3) });
const pong = encodeFrame({ type: FrameType.PONG, correlation: 1 });

it('counts PUB and REQ frames, not control frames, across chunks cut inside frames', () => {
  const big = pub(5000);
  const chunks = [pong, big.subarray(0, FIXED_SIZE), big.subarray(FIXED_SIZE), req, pub(10), pong];
  expect(eventsPast(chunks, 0, -1)).toBe(3);
  expect(eventsIn(big.subarray(0, FIXED_SIZE))).toBe(1);
});

it('counts only the frames that end past the bytes taken, from the batch\'s stream offset', () => {
  const a = pub(100);
  const b = pub(100);
  const c = pub(100);
  const start = 1000;
  const all = [a, b, c];
  expect(eventsPast(all, start, start)).toBe(3);
  // The system took a and half of b: b and c are lost.
  expect(eventsPast(all, start, start + a.length + 50)).toBe(2);
  expect(eventsPast(all, start, start + a.length + b.length)).toBe(1);
  expect(eventsPast(all, start, start + a.length + b.length + c.length)).toBe(0);
  expect(eventsPast([], 0, -1)).toBe(0);
});

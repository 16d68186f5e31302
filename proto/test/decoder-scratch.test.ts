import { describe, expect, it } from 'vitest';
import { FrameType } from '../src/constants.js';
import { encodeFrame } from '../src/frame-encoder.js';
import { FrameDecoder } from '../src/frame-decoder.js';
import { concat } from './helpers.js';

// Decoders share one scanner output buffer (issue #15 footprint: 4 KiB per
// connection before). A decoder fed from inside another's onFrame (an
// in-process transport, a test harness) must still see its own frames and
// leave the outer decode intact.
describe('decoders sharing the scanner scratch', () => {
  it('a push nested in another decoder’s onFrame leaves both streams decoded whole and in order', () => {
    const frames = (prefix: string, n: number): Uint8Array =>
      concat(Array.from({ length: n }, (_, i) => encodeFrame({ type: FrameType.PUB, topic: `${prefix}.${i}`, payload: new Uint8Array(i) })));
    // Over one scanner batch (256 frames), so the outer loop reads the scratch after the callbacks ran.
    const outerBytes = frames('outer', 300);
    const innerBytes = frames('inner', 290);
    const outer = new FrameDecoder();
    const inner = new FrameDecoder();
    const gotOuter: string[] = [];
    const gotInner: string[] = [];
    const errors: string[] = [];
    outer.push(
      outerBytes,
      (f) => {
        gotOuter.push(f.topic);
        if (gotOuter.length % 100 === 1) {
          // Split mid-frame, so the inner decoder also reassembles across chunks.
          const at = 1000 + gotOuter.length;
          inner.push(innerBytes.subarray(0, at), (g) => gotInner.push(g.topic), (e) => errors.push(e.code));
          inner.push(innerBytes.subarray(at), (g) => gotInner.push(g.topic), (e) => errors.push(e.code));
        }
      },
      (e) => errors.push(e.code),
    );
    expect(errors).toEqual([]);
    expect(gotOuter).toEqual(Array.from({ length: 300 }, (_, i) => `outer.${i}`));
    expect(gotInner).toEqual([0, 1, 2].flatMap(() => Array.from({ length: 290 }, (_, i) => `inner.${i}`)));
  });

  it('many decoders each keep their own partial frame between pushes', () => {
    const bytes = encodeFrame({ type: FrameType.PUB, topic: 'split', payload: new Uint8Array(500).fill(7) });
    const decoders = Array.from({ length: 50 }, () => new FrameDecoder());
    const got: number[] = [];
    decoders.forEach((d, i) => d.push(bytes.subarray(0, 10 + i), () => got.push(-1), () => got.push(-2)));
    decoders.forEach((d, i) => d.push(bytes.subarray(10 + i), (f) => got.push(f.payload.length), () => got.push(-2)));
    expect(got).toEqual(Array.from({ length: 50 }, () => 500));
  });
});

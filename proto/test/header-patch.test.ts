import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameType, OFF, applyCrcDelta, byteDelta, checkHeader, encodeFrame, patchBytes8, patchU32, patchU64, patchU8, resealHeader, writeHeader } from '../src/index.js';

/** A header with random fields and a valid CRC, at `off` inside a larger buffer. */
function header(off: number, seed: Uint8Array): Uint8Array {
  const buf = new Uint8Array(off + 64 + 8);
  writeHeader(buf, off, {
    type: FrameType.PUB,
    flags: 0,
    hops: seed[0]! & 7,
    topicHash: (seed[1]! << 24) | (seed[2]! << 8),
    origin: seed.subarray(3, 11),
    seq: seed[11]! * 0x1000000 + seed[12]!,
    timestamp: seed[13]! === 0 ? 0 : 1_700_000_000_000 + seed[13]!,
    correlation: seed[14]!,
    sid: seed[15]! * 65536,
  });
  return buf;
}

describe('header-patch: incremental CRC equals a full reseal', () => {
  it('for every field a node rewrites, any old and new values', () => {
    fc.assert(
      fc.property(
        fc.nat(40),
        fc.uint8Array({ minLength: 16, maxLength: 16 }),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 2 ** 53 - 1 }),
        fc.integer({ min: 0, max: 2 ** 53 - 1 }),
        fc.nat(0xffffffff),
        fc.nat(255),
        (off, seed, origin, seq, ts, sid, hops) => {
          const a = header(off, seed);
          const b = a.slice();
          const d = patchBytes8(a, off, OFF.ORIGIN, origin) ^ patchU64(a, off, OFF.SEQ, seq) ^ patchU64(a, off, OFF.TIMESTAMP, ts) ^ patchU32(a, off, OFF.SID, sid) ^ patchU8(a, off, OFF.HOPS, hops);
          applyCrcDelta(a, off, d);
          b.set(origin, off + OFF.ORIGIN);
          const v = new DataView(b.buffer);
          v.setUint32(off + OFF.SEQ, Math.floor(seq / 2 ** 32));
          v.setUint32(off + OFF.SEQ + 4, seq >>> 0);
          v.setUint32(off + OFF.TIMESTAMP, Math.floor(ts / 2 ** 32));
          v.setUint32(off + OFF.TIMESTAMP + 4, ts >>> 0);
          v.setUint32(off + OFF.SID, sid);
          b[off + OFF.HOPS] = hops;
          resealHeader(b, off);
          expect([...a]).toEqual([...b]);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('leaves a patched frame valid for the decoder, and an unchanged one byte-identical', () => {
    const f = encodeFrame({ type: FrameType.PUB, topic: 'a.b', payload: new Uint8Array([1, 2, 3]) });
    const same = f.slice();
    applyCrcDelta(same, 0, patchU32(same, 0, OFF.SID, 0) ^ patchU8(same, 0, OFF.HOPS, same[OFF.HOPS]!));
    expect([...same]).toEqual([...f]);
    applyCrcDelta(f, 0, patchU64(f, 0, OFF.SEQ, 123456789) ^ patchU32(f, 0, OFF.SID, 7));
    expect(checkHeader(f, 0, 1 << 20)).toBe(0);
  });

  it('byteDelta(p, x) is the delta patchU8 gives for changing the byte at p by x, at every position', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 59 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (p, from, to) => {
        const b = new Uint8Array(64);
        b[p] = from;
        expect(byteDelta(p, from ^ to)).toBe(patchU8(b, 0, p, to));
      }),
    );
  });
});

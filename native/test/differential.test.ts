/**
 * Native == fallback. The same random input goes through both
 * implementations and every output must be identical: scan return values and
 * whole `out` arrays (including slots a scan must leave alone), CRC32C and
 * topic hashes across sizes and unaligned offsets. Property tests (fast-check)
 * also pin scanner invariants for each implementation on its own.
 */
import fc from 'fast-check';
import { assertProperty } from '@meshbus/testkit/property';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME, FIXED_SIZE, FrameType, OFF, Repeats, SCAN_META, SCAN_SLOTS } from '@meshbus/proto';
import { jsOps, type ByteOps } from '../src/index.js';
import { NATIVE_NOTE, concat, needNative, frame, impls, patch, placed, writeU32BE } from './helpers.js';

const KNOWN_TYPES = Object.values(FrameType);
const RUNS = Number(process.env['MESHBUS_FC_RUNS'] ?? 400);

/** One frame, valid or broken in one of the ways a peer or the network can break it. */
const frameArb = fc
  .record({
    type: fc.oneof({ arbitrary: fc.constantFrom(...KNOWN_TYPES), weight: 9 }, { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 }),
    flags: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 9 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
    topic: fc.uint8Array({ maxLength: 24 }),
    ext: fc.nat(12),
    payload: fc.oneof({ arbitrary: fc.nat(200), weight: 8 }, { arbitrary: fc.nat(5000), weight: 2 }),
    sid: fc.nat(),
    seq: fc.nat(),
    // 0..9: valid; others break one rule (the header CRC stays valid unless the rule is the CRC).
    fault: fc.oneof({ arbitrary: fc.constant(0), weight: 12 }, { arbitrary: fc.integer({ min: 1, max: 9 }), weight: 4 }),
    faultByte: fc.integer({ min: 0, max: 255 }),
  })
  .map((r) => {
    const f = frame({
      type: r.type as FrameType,
      flags: r.flags,
      topic: r.topic,
      ext: new Uint8Array(r.ext).fill(7),
      payload: new Uint8Array(r.payload).fill(r.faultByte),
      sid: r.sid,
      seq: r.seq,
    });
    switch (r.fault) {
      case 1: // bad CRC
        f[OFF.CRC + (r.faultByte & 3)] ^= 1 + (r.faultByte >> 2);
        break;
      case 2: // bad magic
        f[OFF.MAGIC + (r.faultByte & 1)] ^= 0x10;
        break;
      case 3: // version
        patch(f, 0, OFF.VERSION, [r.faultByte === 1 ? 2 : r.faultByte]);
        break;
      case 4: // reserved byte
        patch(f, 0, OFF.RESERVED + (r.faultByte & 3), [r.faultByte | 1]);
        break;
      case 5: // length field disagrees
        writeU32BE(f, 0, (f.length - 4 + (r.faultByte - 128)) >>> 0);
        patch(f, 0, 0, []);
        break;
      case 6: // claims up to 4 GiB, consistently (too large, or pending forever)
        writeU32BE(f, 0, 0xffffffff - r.faultByte);
        writeU32BE(f, OFF.PAYLOAD_LEN, 0xffffffff - r.faultByte - 60 - r.topic.length - r.ext);
        patch(f, 0, 0, []);
        break;
      case 7: // a random header byte, CRC not fixed
        f[r.faultByte % 60] ^= 0xff;
        break;
      case 8: // truncated
        return f.subarray(0, r.faultByte % f.length);
      case 9: // garbage instead of a frame
        return f.map((b, i) => (b * 131 + i * r.faultByte) & 0xff);
    }
    return f;
  });

/** A stream: frames, optional garbage, optional byte flips, optional truncation. */
const streamArb = fc
  .record({
    frames: fc.array(frameArb, { maxLength: 12 }),
    garbage: fc.oneof({ arbitrary: fc.constant(new Uint8Array(0)), weight: 5 }, { arbitrary: fc.uint8Array({ maxLength: 200 }), weight: 1 }),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }),
    flipOn: fc.boolean(),
    cut: fc.option(fc.nat(), { freq: 4 }),
    lead: fc.nat(9),
    tail: fc.nat(9),
  })
  .map((r) => {
    let s = concat([...r.frames, r.garbage]);
    if (r.flipOn && s.length > 0) for (const [pos, x] of r.flips) s[pos % s.length] ^= x;
    if (r.cut !== null && s.length > 0) s = s.subarray(0, r.cut % (s.length + 1));
    return placed(s, r.lead, r.tail);
  });

const maxArb = fc.oneof(
  fc.constant(DEFAULT_MAX_FRAME),
  fc.constantFrom(0, 59, 60, 64, 100, 1000, 0xffffffff, 2 ** 33, Infinity, -1),
  fc.nat(),
);
const slotsArb = fc.tuple(fc.nat(10), fc.nat(3)).map(([k, extra]) => SCAN_META + SCAN_SLOTS * k + (k > 0 ? extra : 0));

/** Scans with both, without `repeats` and with each compare (SCAN_REPEAT), and compares everything; returns the output with Repeats.HEADER. */
function scanBoth(a: ByteOps, b: ByteOps, buf: Uint8Array, start: number, end: number, max: number, len: number): Uint32Array {
  let oa = new Uint32Array(0);
  let header = oa;
  for (const repeats of [false, Repeats.UNSTAMPED, true]) {
    oa = new Uint32Array(len).fill(0xdeadbeef);
    const ob = oa.slice();
    const ra = a.scanner.scan(buf, start, end, max, oa, repeats);
    const rb = b.scanner.scan(buf, start, end, max, ob, repeats);
    expect(ra).toBe(rb);
    expect(oa).toEqual(ob);
    if (repeats === true) header = oa;
  }
  return header;
}

/**
 * Streams of a few frames repeated, each copy maybe changed in one header or
 * topic byte (CRC resealed) or in its payload length: the inputs SCAN_REPEAT
 * is about, which random frames almost never are.
 */
const repeatedArb = fc
  .record({
    bases: fc.array(fc.record({ topic: fc.uint8Array({ minLength: 1, maxLength: 12 }), payload: fc.nat(40), ext: fc.nat(3) }), { minLength: 1, maxLength: 2 }),
    copies: fc.array(fc.record({ base: fc.nat(), change: fc.oneof({ arbitrary: fc.constant(-1), weight: 3 }, { arbitrary: fc.nat(80), weight: 1 }), byte: fc.integer({ min: 1, max: 255 }), payload: fc.option(fc.nat(40)) }), { maxLength: 40 }),
  })
  .map((r) =>
    concat(
      r.copies.map((c) => {
        const b = r.bases[c.base % r.bases.length]!;
        const f = frame({ topic: b.topic, ext: new Uint8Array(b.ext), payload: new Uint8Array(c.payload ?? b.payload) });
        if (c.change < 0) return f;
        // A header byte past the length prefix (flags, reserved and length fields included: maybe no longer valid) or a topic byte.
        const at = 4 + (c.change % (FIXED_SIZE - 8 + b.topic.length));
        const pos = at < OFF.CRC ? at : at + 4;
        return patch(f, 0, pos, [f[pos]! ^ c.byte]);
      }),
    ),
  );

describe(`differential: native scanner == js scanner${NATIVE_NOTE}`, () => {
  // Without the addon each comparison is reported as skipped (a failure under MESHBUS_REQUIRE_NATIVE=1).

  it('random streams, random [start, end), limits and out sizes', (ctx) => {
    const n = needNative(ctx);
    assertProperty(
      fc.property(streamArb, fc.nat(), fc.nat(), maxArb, slotsArb, (buf, x, y, max, len) => {
        const s = x % (buf.length + 1);
        const e = s + (y % (buf.length - s + 1));
        scanBoth(n, jsOps, buf, s, e, max, len);
        scanBoth(n, jsOps, buf, 0, buf.length, max, len);
      }),
      { numRuns: RUNS },
    );
  });

  it('repeated frames (SCAN_REPEAT): the same bits, at any [start, end) and out size', (ctx) => {
    const n = needNative(ctx);
    let flagged = 0;
    assertProperty(
      fc.property(repeatedArb, fc.nat(), slotsArb, (buf, x, len) => {
        scanBoth(n, jsOps, buf, x % (buf.length + 1), buf.length, DEFAULT_MAX_FRAME, len);
        const out = scanBoth(n, jsOps, buf, 0, buf.length, DEFAULT_MAX_FRAME, SCAN_META + SCAN_SLOTS * 64);
        for (let i = 0; i < out[0]!; i++) if (out[SCAN_META + i * SCAN_SLOTS + 2]! >= 1 << 24) flagged++;
      }),
      { numRuns: RUNS },
    );
    expect(flagged).toBeGreaterThan(RUNS);
  });

  it('streams delivered in random chunks: lock-step, identical at every step', (ctx) => {
    const n = needNative(ctx);
    assertProperty(
      fc.property(streamArb, fc.array(fc.nat(), { maxLength: 20 }), maxArb, slotsArb, (buf, cuts, max, len) => {
        const ends = [...cuts.map((c) => c % (buf.length + 1)), buf.length].sort((a, b) => a - b);
        let p = 0;
        for (const end of ends) {
          if (end < p) continue;
          const out = scanBoth(n, jsOps, buf, p, end, max, len);
          if (out[2] !== 0) break;
          p = out[1]!;
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('zero-length chunks at every position', (ctx) => {
    const n = needNative(ctx);
    const buf = concat([frame(), frame({ payload: new Uint8Array(9) })]);
    for (let i = 0; i <= buf.length; i++) expect(Array.from(scanBoth(n, jsOps, buf, i, i, DEFAULT_MAX_FRAME, 12).subarray(0, 4))).toEqual([0, i, 0, 0]);
  });

  it('crc32c and topicHash: sizes 0..70000, unaligned offsets, chained crc', (ctx) => {
    const n = needNative(ctx);
    const big = new Uint8Array(70_000 + 16);
    let x = 0x9e3779b9;
    for (let i = 0; i < big.length; i++) big[i] = (x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 24;
    const sizes = new Set<number>();
    for (let s = 0; s <= 1100; s++) sizes.add(s);
    // Around the 3-way interleave blocks (3 x 256, 3 x 8192) and the 8-byte steps.
    for (const base of [768, 1536, 8192, 24_576, 49_152, 65_536, 70_000]) for (let d = -9; d <= 9; d++) sizes.add(Math.min(70_000, base + d));
    for (let i = 0; i < 60; i++) sizes.add((Math.imul(i + 1, 2654435761) >>> 0) % 70_001);
    let k = 0;
    for (const size of sizes) {
      const off = k++ % 16;
      const crc = (k * 0x1234567) >>> 0;
      expect(n.crc32c(big, off, off + size)).toBe(jsOps.crc32c(big, off, off + size));
      expect(n.crc32c(big, off, off + size, crc)).toBe(jsOps.crc32c(big, off, off + size, crc));
      expect(n.crc32c(big.subarray(off, off + size))).toBe(jsOps.crc32c(big, off, off + size));
      if (size <= 4096 || k % 8 === 0) expect(n.topicHash(big, off, off + size)).toBe(jsOps.topicHash(big, off, off + size));
    }
  });

  it('crc32c and topicHash on random bytes (fast-check)', (ctx) => {
    const n = needNative(ctx);
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (b, x, y, crc) => {
        const s = x % (b.length + 1);
        const e = s + (y % (b.length - s + 1));
        expect(n.crc32c(b, s, e, crc)).toBe(jsOps.crc32c(b, s, e, crc));
        expect(n.topicHash(b, s, e)).toBe(jsOps.topicHash(b, s, e));
      }),
      { numRuns: RUNS },
    );
  });

  it('writeHeader: identical bytes for random fields', (ctx) => {
    const n = needNative(ctx);
    const fieldsArb = fc.record({
      type: fc.constantFrom(...KNOWN_TYPES),
      flags: fc.integer({ min: 0, max: 0xffff }),
      hops: fc.nat(255),
      maxHops: fc.option(fc.nat(255), { nil: undefined }),
      topicHash: fc.integer({ min: 0, max: 0xffffffff }),
      origin: fc.option(fc.uint8Array({ minLength: 8, maxLength: 8 }), { nil: undefined }),
      seq: fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
      timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      correlation: fc.integer({ min: 0, max: 0xffffffff }),
      topicLen: fc.nat(0xffff),
      extLen: fc.nat(0xffff),
      payloadLen: fc.nat(),
      sid: fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
    });
    assertProperty(
      fc.property(fieldsArb, fc.nat(40), (f, off) => {
        const a = new Uint8Array(off + FIXED_SIZE + 3).fill(0x77);
        const b = a.slice();
        n.writeHeader(a, off, f);
        jsOps.writeHeader(b, off, f);
        expect(a).toEqual(b);
      }),
      { numRuns: RUNS },
    );
  });
});

for (const impl of impls) {
  describe(`scanner properties: ${impl.name}`, () => {
    const validStream = fc.array(
      fc.record({ topic: fc.uint8Array({ maxLength: 20 }), payload: fc.nat(300), type: fc.constantFrom(...KNOWN_TYPES) }).map((r) =>
        frame({ type: r.type, topic: r.topic, payload: new Uint8Array(r.payload) }),
      ),
      { maxLength: 10 },
    );

    it('a valid stream split anywhere yields the same frames as the whole', () => {
      assertProperty(
        fc.property(validStream, fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
          const buf = concat(frames);
          const out = new Uint32Array(SCAN_META + SCAN_SLOTS * 16);
          const got: number[][] = [];
          let p = 0;
          for (const end of [...cuts.map((c) => c % (buf.length + 1)), buf.length].sort((a, b) => a - b)) {
            if (end < p) continue;
            const n = impl.scanner.scan(buf, p, end, DEFAULT_MAX_FRAME, out);
            expect(out[2]).toBe(0);
            for (let i = 0; i < n; i++) got.push(Array.from(out.subarray(4 + 4 * i, 8 + 4 * i)));
            p = out[1]!;
          }
          expect(p).toBe(buf.length);
          let o = 0;
          expect(got.map((g) => [g[0], g[1]])).toEqual(frames.map((f) => [(o += f.length) - f.length, f.length]));
        }),
        { numRuns: RUNS / 2 },
      );
    });

    it('any bytes: never throws, reports frames inside [start, end), stop within range', () => {
      assertProperty(
        fc.property(streamArb, maxArb, slotsArb, (buf, max, len) => {
          const out = new Uint32Array(len);
          const n = impl.scanner.scan(buf, 0, buf.length, max, out);
          expect(out[0]).toBe(n);
          expect(out[1]).toBeLessThanOrEqual(buf.length);
          let p = 0;
          for (let i = 0; i < n; i++) {
            expect(out[4 + 4 * i]).toBe(p);
            p += out[5 + 4 * i]!;
          }
          expect(out[1]).toBe(p);
          if (out[2] !== 0) expect(out[2]).toBeGreaterThanOrEqual(1001);
        }),
        { numRuns: RUNS },
      );
    });
  });
}

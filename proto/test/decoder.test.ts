import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertProperty } from '@meshbus/testkit/property';
import { Flags, FrameType, OFF } from '../src/constants.js';
import { ERROR_CODES, ProtocolError } from '../src/errors.js';
import { encodeFrame, encodeHead, type FrameSpec } from '../src/frame-encoder.js';
import { FrameDecoder, decodeFrames } from '../src/frame-decoder.js';
import { jsScanner, SCAN_META, SCAN_REPEAT, SCAN_SLOTS } from '../src/frame-scanner.js';
import { Repeats, jsRepeatScanner, repeatingScanner } from '../src/frame-repeats.js';
import { resealHeader } from '../src/header.js';
import type { Frame } from '../src/frame.js';
import { sampleFrames, streamCases } from '../vectors/generate.js';
import { concat, run, splitAt } from './helpers.js';

const samples = sampleFrames().map((s) => encodeFrame(s.spec));
const stream = concat(samples);
const whole = run([stream]);

describe('FrameDecoder: splits', () => {
  it('decodes the sample stream in one chunk', () => {
    expect(whole.errors).toEqual([]);
    expect(whole.thrown).toEqual([]);
    expect(whole.frames.length).toBe(samples.length);
  });

  it('every split point into two chunks gives identical frames', () => {
    for (let i = 0; i <= stream.length; i++) {
      const r = run(splitAt(stream, [i]));
      expect(r.thrown).toEqual([]);
      expect(r.errors).toEqual([]);
      expect(r.frames).toEqual(whole.frames);
    }
  });

  it('one byte at a time gives identical frames', () => {
    const chunks = Array.from({ length: stream.length }, (_, i) => stream.slice(i, i + 1));
    expect(run(chunks)).toEqual(whole);
  });

  it('every pair of split points within the first frames gives identical frames', () => {
    const part = concat(samples.slice(0, 4));
    const want = run([part]);
    for (let i = 0; i <= part.length; i += 3) {
      for (let j = i; j <= part.length; j += 5) expect(run(splitAt(part, [i, j]))).toEqual(want);
    }
  });

  it('empty chunks are harmless', () => {
    const chunks = [new Uint8Array(0), stream.slice(0, 10), new Uint8Array(0), stream.slice(10), new Uint8Array(0)];
    expect(run(chunks)).toEqual(whole);
  });

  it('a chunk with more frames than one scanner batch', () => {
    const ping = encodeFrame({ type: FrameType.PING, correlation: 1 });
    const many = concat(Array.from({ length: 1000 }, () => ping));
    const r = run([many]);
    expect(r.errors).toEqual([]);
    expect(r.frames.length).toBe(1000);
    expect(run(splitAt(many, [777, 64 * 300 + 5])).frames.length).toBe(1000);
  });

  it('a header-only frame completed across chunks', () => {
    const ping = encodeFrame({ type: FrameType.PING, correlation: 9 });
    for (let i = 1; i < 64; i++) {
      const r = run(splitAt(concat([ping, ping]), [i, 64 + i]));
      expect(r.errors).toEqual([]);
      expect(r.frames.map((f) => f.correlation)).toEqual([9, 9]);
    }
  });

  it('decodeFrames throws the first ProtocolError', () => {
    expect(() => decodeFrames(stream.subarray(0, stream.length - 1))).toThrow(ProtocolError);
    expect(decodeFrames(stream).length).toBe(samples.length);
  });

  it('stream vectors decode the same split anywhere', () => {
    for (const c of streamCases()) {
      const want = run([c.bytes]);
      for (let i = 0; i <= c.bytes.length; i += 7) expect(run(splitAt(c.bytes, [i]))).toEqual(want);
    }
  });
});

describe('FrameDecoder: views, not copies', () => {
  it('payload, topic and bytes of a frame inside one chunk share the chunk buffer', () => {
    const chunk = stream.slice();
    const frames: Frame[] = [];
    new FrameDecoder().push(chunk, (f) => frames.push(f), () => expect.unreachable());
    for (const f of frames) {
      expect(f.buf).toBe(chunk);
      expect(f.payload.buffer).toBe(chunk.buffer);
      expect(f.topicBytes.buffer).toBe(chunk.buffer);
      expect(f.bytes.buffer).toBe(chunk.buffer);
    }
    // Writing through the view is visible in the chunk: same memory.
    const pub = frames.find((f) => f.payloadLen > 0)!;
    pub.payload[0] = 0x99;
    expect(chunk[pub.end - pub.payloadLen]).toBe(0x99);
  });

  it('views work on a chunk that is itself a subarray at an offset', () => {
    const big = new Uint8Array(stream.length + 100);
    big.set(stream, 37);
    const chunk = big.subarray(37, 37 + stream.length);
    const frames: Frame[] = [];
    new FrameDecoder().push(chunk, (f) => frames.push(f), () => expect.unreachable());
    expect(frames.length).toBe(samples.length);
    for (const f of frames) expect(f.payload.buffer).toBe(big.buffer);
  });

  it('a frame split across chunks is reassembled into its own buffer', () => {
    const f1 = encodeFrame({ type: FrameType.PUB, topic: 'a', payload: new Uint8Array(100).fill(7) });
    const [a, b] = splitAt(f1, [80]);
    const frames: Frame[] = [];
    const d = new FrameDecoder();
    d.push(a!, (f) => frames.push(f), () => expect.unreachable());
    expect(d.buffered).toBe(80);
    d.push(b!, (f) => frames.push(f), () => expect.unreachable());
    expect(d.buffered).toBe(0);
    expect(frames[0]!.payload.buffer).not.toBe(a!.buffer);
    expect(frames[0]!.payload.every((x) => x === 7)).toBe(true);
  });
});

describe('FrameDecoder: errors', () => {
  const pub = encodeFrame({ type: FrameType.PUB, topic: 'a.b', payload: new Uint8Array([1, 2, 3]) });
  const ping = encodeFrame({ type: FrameType.PING, correlation: 4 });

  it('frames over the limit are skipped with MB_ERR_FRAME_TOO_LARGE and the next frame is decoded', () => {
    const big = encodeFrame({ type: FrameType.PUB, topic: 'big', payload: new Uint8Array(5000).fill(1) });
    const s = concat([ping, big, pub, big, ping]);
    const want = run([s], { maxFrameLength: 1000 });
    expect(want.errors.map((e) => e.code)).toEqual(['MB_ERR_FRAME_TOO_LARGE', 'MB_ERR_FRAME_TOO_LARGE']);
    expect(want.errors.every((e) => !e.fatal)).toBe(true);
    expect(want.frames.map((f) => f.type)).toEqual([FrameType.PING, FrameType.PUB, FrameType.PING]);
    for (let i = 0; i <= s.length; i += 11) expect(run(splitAt(s, [i]), { maxFrameLength: 1000 })).toEqual(want);
    expect(run(Array.from({ length: s.length }, (_, i) => s.slice(i, i + 1)), { maxFrameLength: 1000 })).toEqual(want);
  });

  it('a limit raised by a frame handler applies to the rest of the same chunk (a node raises it once HELLO is accepted)', () => {
    const big = encodeFrame({ type: FrameType.PUB, topic: 'big', payload: new Uint8Array(5000).fill(1) });
    const s = concat([ping, big, ping, big]);
    for (const chunks of [[s], splitAt(s, [ping.length + 10])]) {
      const d = new FrameDecoder({ maxFrameLength: 1000 });
      const types: number[] = [];
      const errs: ProtocolError[] = [];
      d.push(chunks[0]!, (f) => {
        types.push(f.type);
        if (types.length === 1) d.limit = 10_000;
      }, (e) => errs.push(e));
      for (const c of chunks.slice(1)) d.push(c, (f) => types.push(f.type), (e) => errs.push(e));
      expect(errs).toEqual([]);
      expect(types).toEqual([FrameType.PING, FrameType.PUB, FrameType.PING, FrameType.PUB]);
      expect(d.limit).toBe(10_000);
    }
  });

  it('an oversized frame is never buffered', () => {
    const big = encodeHead({ type: FrameType.PUB, topic: 'big', payload: new Uint8Array(1 << 20) });
    const d = new FrameDecoder({ maxFrameLength: 1000 });
    const errs: ProtocolError[] = [];
    d.push(big, () => expect.unreachable(), (e) => errs.push(e));
    expect(errs.map((e) => e.code)).toEqual(['MB_ERR_FRAME_TOO_LARGE']);
    expect(d.buffered).toBe(0);
    d.push(new Uint8Array(1 << 20), () => expect.unreachable(), () => expect.unreachable());
    const frames: Frame[] = [];
    d.push(ping, (f) => frames.push(f), () => expect.unreachable());
    expect(frames.length).toBe(1);
  });

  it('a truncated stream gives MB_ERR_TRUNCATED on end()', () => {
    for (let cut = 1; cut < pub.length; cut++) {
      const r = run([pub.subarray(0, cut)]);
      expect(r.frames).toEqual([]);
      expect(r.errors.map((e) => e.code)).toEqual(['MB_ERR_TRUNCATED']);
    }
    expect(run([]).errors).toEqual([]);
  });

  it('a fatal error stops the decoder until reset()', () => {
    const bad = pub.slice();
    bad[OFF.VERSION] = 7;
    resealHeader(bad, 0);
    const d = new FrameDecoder();
    const errs: ProtocolError[] = [];
    const frames: Frame[] = [];
    d.push(concat([ping, bad, ping]), (f) => frames.push(f), (e) => errs.push(e));
    expect(frames.length).toBe(1);
    expect(errs.map((e) => [e.code, e.fatal])).toEqual([['MB_ERR_UNSUPPORTED_VERSION', true]]);
    expect(d.failed?.code).toBe('MB_ERR_UNSUPPORTED_VERSION');
    d.push(ping, (f) => frames.push(f), (e) => errs.push(e));
    d.end((e) => errs.push(e));
    expect(frames.length).toBe(1);
    expect(errs.length).toBe(1);
    d.reset();
    d.push(ping, (f) => frames.push(f), (e) => errs.push(e));
    expect(frames.length).toBe(2);
  });

  it('each header check gives its own code, in the specified order', () => {
    const cases: Array<[string, (b: Uint8Array) => void, boolean]> = [
      ['MB_ERR_BAD_MAGIC', (b) => (b[OFF.MAGIC] = 0), false],
      ['MB_ERR_BAD_CRC', (b) => (b[OFF.SEQ] = 1), false],
      ['MB_ERR_BAD_CRC', (b) => (b[OFF.VERSION] = 2), false],
      ['MB_ERR_UNSUPPORTED_VERSION', (b) => (b[OFF.VERSION] = 2), true],
      ['MB_ERR_UNKNOWN_TYPE', (b) => ((b[OFF.TYPE] = 0x99), (b[OFF.RESERVED] = 1)), true],
      ['MB_ERR_RESERVED_BITS', (b) => (b[OFF.FLAGS] = 1), true],
      ['MB_ERR_RESERVED_BITS', (b) => ((b[OFF.RESERVED + 2] = 1), (b[OFF.PAYLOAD_LEN] = 1)), true],
      ['MB_ERR_LENGTH_MISMATCH', (b) => (b[OFF.TOPIC_LEN + 1] = 2), true],
      ['MB_ERR_LENGTH_MISMATCH', (b) => (b[OFF.EXT_LEN + 1] = 1), true],
    ];
    for (const [code, mutate, reseal] of cases) {
      const b = pub.slice();
      mutate(b);
      if (reseal) resealHeader(b, 0);
      const r = run([b]);
      expect(r.errors[0]?.code, code).toBe(code);
      expect(r.errors[0]!.fatal).toBe(true);
      expect(run(splitAt(b, [5, 30])).errors[0]?.code).toBe(code);
    }
  });

  it('bad magic is reported as soon as 6 bytes are present', () => {
    const d = new FrameDecoder();
    const errs: ProtocolError[] = [];
    d.push(new Uint8Array([0, 0, 0, 60, 0x47]), () => undefined, (e) => errs.push(e));
    expect(errs).toEqual([]);
    d.push(new Uint8Array([0x45]), () => undefined, (e) => errs.push(e));
    expect(errs.map((e) => e.code)).toEqual(['MB_ERR_BAD_MAGIC']);
  });
});

describe('frame scanner contract', () => {
  it('reports offsets, sizes, type|flags<<8 and topic hash; stops when out is full', () => {
    const a = encodeFrame({ type: FrameType.PUB, topic: 'x.y', flags: Flags.TRACE | Flags.ACK_REQUESTED, payload: new Uint8Array(3) });
    const s = concat([a, a, a]);
    const out = new Uint32Array(SCAN_META + 2 * SCAN_SLOTS);
    expect(jsScanner.scan(s, 0, s.length, 1 << 20, out)).toBe(2);
    expect(out[0]).toBe(2);
    expect(out[1]).toBe(2 * a.length);
    expect(out[2]).toBe(0);
    expect(Array.from(out.subarray(4, 8))).toEqual([0, a.length, FrameType.PUB | (3 << 8), decodeFrames(a)[0]!.topicHash]);
    expect(out[8]).toBe(a.length);
  });

  it('jsRepeatScanner with `repeats` flags a frame whose header (but for its lengths and CRC) and topic repeat the frame just before it', () => {
    const base: FrameSpec = { type: FrameType.PUB, topic: 'x.y', payload: new Uint8Array(3) };
    const frames = [
      encodeFrame(base),
      encodeFrame(base), // repeat
      encodeFrame({ ...base, payload: new Uint8Array(10) }), // repeat: lengths and CRC are not compared
      encodeFrame({ ...base, hops: 1 }),
      encodeFrame(base),
      encodeFrame({ ...base, topic: 'x.z' }), // same length, other topic
      encodeFrame({ ...base, topic: 'x.z' }), // repeat
      encodeFrame({ ...base, correlation: 5 }),
      encodeFrame({ ...base, correlation: 5, payload: new Uint8Array([1, 2, 3]) }), // repeat: payload bytes are not compared
      encodeFrame({ ...base, correlation: 5, sid: 1 }),
      encodeFrame({ ...base, correlation: 5, sid: 1, seq: 9 }),
      encodeFrame({ ...base, correlation: 5, sid: 1, seq: 9, timestamp: 1 }),
      encodeFrame({ ...base, correlation: 5, sid: 1, seq: 9, timestamp: 1, ext: new Uint8Array(0) }), // repeat
    ];
    const s = concat(frames);
    const out = new Uint32Array(SCAN_META + 16 * SCAN_SLOTS);
    const bits = (): number[] => Array.from({ length: out[0]! }, (_, i) => (out[SCAN_META + i * SCAN_SLOTS + 2]! >= SCAN_REPEAT ? 1 : 0));
    expect(jsRepeatScanner.scan(s, 0, s.length, 1 << 20, out, true)).toBe(frames.length);
    expect(bits()).toEqual([0, 1, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1]);
    expect(out[SCAN_META + 2]! & (SCAN_REPEAT - 1)).toBe(FrameType.PUB);
    // Only within one call: the first frame of the next call is not compared with the last of this one.
    expect(jsRepeatScanner.scan(s, frames[0]!.length, s.length, 1 << 20, out, true)).toBe(frames.length - 1);
    expect(bits()[0]).toBe(0);
    // Not asked, or the lean scanner clients carry: no compare, no bit.
    jsRepeatScanner.scan(s, 0, s.length, 1 << 20, out);
    expect(bits().every((b) => b === 0)).toBe(true);
    jsScanner.scan(s, 0, s.length, 1 << 20, out, true);
    expect(bits().every((b) => b === 0)).toBe(true);
    // The decoder passes it on from a scanner asked for it, but never for a frame reassembled across chunks.
    const seen: boolean[] = [];
    const d = new FrameDecoder({ scanner: { name: 'js', scan: (b, st, e, m, o) => jsRepeatScanner.scan(b, st, e, m, o, true) } });
    const cut = frames[0]!.length + frames[1]!.length + 5;
    d.push(s.subarray(0, cut), (_f, repeat) => seen.push(repeat === true), (e) => expect.fail(e.message));
    d.push(s.subarray(cut), (_f, repeat) => seen.push(repeat === true), (e) => expect.fail(e.message));
    expect(seen).toEqual([false, true, false, false, false, false, true, false, true, false, false, false, true]);
  });

  it('jsRepeatScanner with Repeats.UNSTAMPED leaves the sequence and timestamp out of the compare, nothing else (a peer\'s events)', () => {
    const origin = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const base: FrameSpec = { type: FrameType.PUB, topic: 'x.y', payload: new Uint8Array(3), origin, seq: 100, timestamp: 5, hops: 1 };
    const frames = [
      encodeFrame(base),
      encodeFrame({ ...base, seq: 101 }), // repeat: the next event of the origin
      encodeFrame({ ...base, seq: 102, timestamp: 6, payload: new Uint8Array(9) }), // repeat
      encodeFrame({ ...base, seq: 3 }), // repeat: a sequence that goes back is the order check's, not the compare's
      encodeFrame({ ...base, origin: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 9]) }), // another origin
      encodeFrame({ ...base, origin: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 9]), hops: 2 }), // other hops
      encodeFrame({ ...base, origin: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 9]), hops: 2, correlation: 1 }), // other correlation
      encodeFrame({ ...base, origin: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 9]), hops: 2, correlation: 1, seq: 7 }), // repeat
      encodeFrame({ ...base, origin: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 9]), hops: 2, correlation: 1, seq: 8, sid: 4 }), // other sid
    ];
    const s = concat(frames);
    const out = new Uint32Array(SCAN_META + 16 * SCAN_SLOTS);
    const bits = (): number[] => Array.from({ length: out[0]! }, (_, i) => (out[SCAN_META + i * SCAN_SLOTS + 2]! >= SCAN_REPEAT ? 1 : 0));
    expect(jsRepeatScanner.scan(s, 0, s.length, 1 << 20, out, Repeats.UNSTAMPED)).toBe(frames.length);
    expect(bits()).toEqual([0, 1, 1, 1, 0, 0, 0, 1, 0]);
    // The header compare (a client's) keeps them apart.
    expect(jsRepeatScanner.scan(s, 0, s.length, 1 << 20, out, Repeats.HEADER)).toBe(frames.length);
    expect(bits()).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // repeatingScanner asks for it at every call.
    repeatingScanner(jsRepeatScanner, Repeats.UNSTAMPED).scan(s, 0, s.length, 1 << 20, out);
    expect(bits()).toEqual([0, 1, 1, 1, 0, 0, 0, 1, 0]);
  });

  it('reports the pending length of an incomplete frame with a complete header', () => {
    const a = encodeFrame({ type: FrameType.PUB, topic: 'x', payload: new Uint8Array(100) });
    const out = new Uint32Array(SCAN_META + 4 * SCAN_SLOTS);
    expect(jsScanner.scan(a, 0, 70, 1 << 20, out)).toBe(0);
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 0, 0, a.length - 4]);
    expect(jsScanner.scan(a, 0, 40, 1 << 20, out)).toBe(0);
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    expect(jsScanner.scan(a, 0, a.length, 50, out)).toBe(0);
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 0, ERROR_CODES.MB_ERR_FRAME_TOO_LARGE.num, a.length - 4]);
  });
});

// ---------------------------------------------------------------- properties

const KNOWN_NUMS = new Set(Object.values(ERROR_CODES).map((d) => d.num));
const token = fc.stringMatching(/^[a-z0-9_-]{1,8}$/);
const topicArb = fc.array(token, { minLength: 1, maxLength: 5 }).map((t) => t.join('.'));
const typeArb = fc.constantFrom(...Object.values(FrameType));
const specArb: fc.Arbitrary<FrameSpec> = fc.record({
  type: typeArb,
  topic: fc.option(topicArb, { nil: undefined }),
  payload: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: undefined }),
  flags: fc.constantFrom(0, 1, 2, 3),
  hops: fc.integer({ min: 0, max: 255 }),
  maxHops: fc.integer({ min: 0, max: 255 }),
  origin: fc.uint8Array({ minLength: 8, maxLength: 8 }),
  seq: fc.maxSafeNat(),
  timestamp: fc.maxSafeNat(),
  correlation: fc.nat({ max: 0xffffffff }),
  sid: fc.nat({ max: 0xffffffff }),
  ext: fc.option(
    fc.record(
      { headers: fc.dictionary(token, fc.string({ maxLength: 10 }), { maxKeys: 3 }), reply: topicArb, trace: fc.string({ maxLength: 12 }) },
      { requiredKeys: [] },
    ),
    { nil: undefined },
  ),
});
const streamArb = fc.array(specArb, { minLength: 1, maxLength: 8 }).map((specs) => concat(specs.map((s) => encodeFrame(s))));
const cutsArb = (len: number) => fc.uniqueArray(fc.integer({ min: 0, max: len }), { maxLength: 12 }).map((c) => c.sort((a, b) => a - b));

function assertOnlyTypedOutcomes(r: ReturnType<typeof run>): void {
  expect(r.thrown).toEqual([]);
  for (const e of r.errors) expect(KNOWN_NUMS.has(e.num)).toBe(true);
  // At most one fatal error, and it is the last thing reported.
  const fatal = r.errors.findIndex((e) => e.fatal);
  if (fatal >= 0) expect(fatal).toBe(r.errors.length - 1);
}

describe('FrameDecoder: properties', () => {
  it('random valid streams split at random points give the same frames', () => {
    assertProperty(
      fc.property(
        streamArb.chain((s) => fc.tuple(fc.constant(s), cutsArb(s.length))),
        ([s, cuts]) => {
          const want = run([s]);
          expect(want.errors).toEqual([]);
          expect(run(splitAt(s, cuts))).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decoded frames equal what was encoded', () => {
    assertProperty(
      fc.property(specArb, (spec) => {
        const f = decodeFrames(encodeFrame(spec))[0]!;
        expect(f.type).toBe(spec.type);
        expect(f.topic).toBe(spec.topic ?? '');
        expect(Array.from(f.payload)).toEqual(Array.from(spec.payload ?? []));
        expect(f.seq).toBe(spec.seq);
        expect(f.timestamp).toBe(spec.timestamp);
        expect(f.correlation).toBe(spec.correlation);
        expect(f.sid).toBe(spec.sid);
        const ext = f.ext;
        if (ext) {
          if (spec.ext?.reply !== undefined) expect(ext.reply).toBe(spec.ext.reply);
          if (spec.ext?.trace !== undefined) expect(ext.trace).toBe(spec.ext.trace);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes give only typed ProtocolErrors, never a throw', () => {
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 400 }), cutsArb(400), (bytes, cuts) => {
        const r = run(splitAt(bytes, cuts.filter((c) => c <= bytes.length)));
        assertOnlyTypedOutcomes(r);
      }),
      { numRuns: 500 },
    );
  });

  it('random bytes behind a valid magic give only typed errors or frames', () => {
    assertProperty(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 200 }), (bytes) => {
        bytes[4] = 0x4d;
        bytes[5] = 0x42;
        bytes[6] = 1;
        assertOnlyTypedOutcomes(run([bytes], { maxFrameLength: 150 }));
        // With a resealed CRC the later checks are reached.
        resealHeader(bytes, 0);
        assertOnlyTypedOutcomes(run([bytes], { maxFrameLength: 150 }));
      }),
      { numRuns: 500 },
    );
  });

  it('mutated valid streams give typed errors or correct frames, split anywhere', () => {
    assertProperty(
      fc.property(
        streamArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        fc.nat(),
        (s, muts, reseal, cut) => {
          const b = s.slice();
          for (const [at, v] of muts) b[at % b.length] = v;
          if (reseal) resealHeader(b, 0);
          const whole = run([b]);
          assertOnlyTypedOutcomes(whole);
          // Every frame reported must be exactly a valid frame: re-decoding its bytes alone gives it back.
          for (const f of whole.frames) {
            const again = run([Uint8Array.from(f.bytes.match(/../g)!.map((h) => parseInt(h, 16)))]);
            expect(again.errors).toEqual([]);
            expect(again.frames).toEqual([f]);
          }
          expect(run(splitAt(b, [cut % (b.length + 1)]))).toEqual(whole);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('frame accessors on decoded random frames throw only ProtocolErrors', () => {
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 60 }), fc.uint8Array({ maxLength: 40 }), (topic, ext) => {
        const head = encodeHead({ type: FrameType.PUB });
        const b = concat([head, topic, ext]);
        b[3] = 60 + topic.length + ext.length;
        b[OFF.TOPIC_LEN + 1] = topic.length;
        b[OFF.EXT_LEN + 1] = ext.length;
        resealHeader(b, 0);
        const f = decodeFrames(b)[0]!;
        for (const get of [() => f.topic, () => f.ext]) {
          try {
            get();
          } catch (e) {
            expect(e).toBeInstanceOf(ProtocolError);
          }
        }
      }),
      { numRuns: 500 },
    );
  });
});

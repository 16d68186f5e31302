/**
 * One suite, run against every available implementation of ByteOps (the
 * TypeScript fallback always, the addon when built), plus the load-time
 * choice of `ops`.
 */
import { describe, expect, it, vi } from 'vitest';
import { DEFAULT_MAX_FRAME, ERROR_CODES, FIXED_SIZE, FrameType, OFF, SCAN_META, SCAN_SLOTS } from '@meshbus/proto';
import { CRC_NATIVE_MIN_BYTES, SCAN_NATIVE_MIN_BYTES, describeOps, jsOps, nativeOps, ops, opsChoice } from '../src/index.js';
import { NATIVE_NOTE, needNative, concat, frame, impls, patch, placed, writeU32BE } from './helpers.js';

const E = (k: keyof typeof ERROR_CODES): number => ERROR_CODES[k].num;
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('native addon availability', () => {
  it(`addon is loaded${NATIVE_NOTE}`, (ctx) => {
    // Without it the fallback is what runs (checked here), and this test is reported as skipped.
    if (!nativeOps) expect(ops).toBe(jsOps);
    const n = needNative(ctx);
    expect(n.name).toBe('native');
    expect(n.scanner.name).toBe('native');
  });
});

for (const impl of impls) {
  describe(`ByteOps: ${impl.name}`, () => {
    const scan = (buf: Uint8Array, start = 0, end = buf.length, max = DEFAULT_MAX_FRAME, slots = 16) => {
      const out = new Uint32Array(SCAN_META + SCAN_SLOTS * slots);
      const n = impl.scanner.scan(buf, start, end, max, out);
      return { n, out, frames: Array.from({ length: n }, (_, i) => Array.from(out.subarray(4 + 4 * i, 8 + 4 * i))) };
    };

    it('crc32c: RFC 3720 check values', () => {
      expect(impl.crc32c(ascii('123456789'))).toBe(0xe3069283);
      expect(impl.crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
      expect(impl.crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
      expect(impl.crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
      expect(impl.crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
      expect(impl.crc32c(new Uint8Array(0))).toBe(0);
    });

    it('crc32c: ranges, defaults and chaining', () => {
      const b = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31 + 7) & 0xff);
      const whole = impl.crc32c(b);
      expect(impl.crc32c(b, 0, b.length, 0)).toBe(whole);
      for (const cut of [0, 1, 7, 8, 63, 767, 768, 769, 24_575, 24_576, 50_001, 100_000]) {
        expect(impl.crc32c(b, cut, b.length, impl.crc32c(b, 0, cut))).toBe(whole);
      }
      expect(impl.crc32c(b, 5, 5)).toBe(0);
      expect(impl.crc32c(b.subarray(3, 1000))).toBe(impl.crc32c(b, 3, 1000));
    });

    it('topicHash: FNV-1a 32 check values', () => {
      expect(impl.topicHash(new Uint8Array(0))).toBe(0x811c9dc5);
      expect(impl.topicHash(ascii('a'))).toBe(0xe40c292c);
      expect(impl.topicHash(ascii('foobar'))).toBe(0xbf9cf968);
      const t = ascii('xx.orders.eu.yy');
      expect(impl.topicHash(t, 3, 12)).toBe(impl.topicHash(ascii('orders.eu')));
    });

    it('writeHeader: same bytes as the reference, in place, around existing data', () => {
      const slab = new Uint8Array(64 * 4).fill(0xee);
      const ref = new Uint8Array(64 * 4).fill(0xee);
      const cases = [
        { type: FrameType.PUB },
        { type: FrameType.REQ, flags: 3, hops: 2, maxHops: 9, topicHash: 0xdeadbeef, origin: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8), seq: 2 ** 40 + 5, timestamp: 1_795_000_000_123, correlation: 0xffffffff, sid: 0xfedcba98, topicLen: 300, extLen: 65_535, payloadLen: 1_048_576 },
        { type: FrameType.GOODBYE, seq: 0, timestamp: 2 ** 53 - 1, payloadLen: 0xffffffff - 60 },
      ];
      cases.forEach((f, i) => {
        impl.writeHeader(slab, 64 * i + 1, f);
        jsOps.writeHeader(ref, 64 * i + 1, f);
      });
      expect(Array.from(slab)).toEqual(Array.from(ref));
    });

    it('scan: reports every complete frame as offsets, nothing copied', () => {
      const a = frame({ topic: 'a.b', payload: ascii('hello') });
      const b = frame({ type: FrameType.REQ, flags: 2, topic: 'c', payload: new Uint8Array(300) });
      const buf = concat([a, b]);
      const r = scan(buf);
      expect(r.n).toBe(2);
      expect(Array.from(r.out.subarray(0, 4))).toEqual([2, buf.length, 0, 0]);
      expect(r.frames[0]).toEqual([0, a.length, FrameType.PUB, jsOps.topicHash(ascii('a.b'))]);
      expect(r.frames[1]).toEqual([a.length, b.length, FrameType.REQ | (2 << 8), jsOps.topicHash(ascii('c'))]);
    });

    it('scan: start in the middle of a buffer with a nonzero byteOffset', () => {
      const f = frame({ payload: new Uint8Array(10) });
      const buf = placed(concat([new Uint8Array(13), f, f.subarray(0, 30)]), 5, 3);
      const r = scan(buf, 13);
      expect(r.n).toBe(1);
      expect(r.frames[0]![0]).toBe(13);
      expect(Array.from(r.out.subarray(0, 4))).toEqual([1, 13 + f.length, 0, 0]);
    });

    it('scan: incomplete input stops without error', () => {
      const f = frame({ payload: new Uint8Array(100) });
      for (const cut of [0, 1, 5, 6, 63]) expect(Array.from(scan(f, 0, cut).out.subarray(0, 4))).toEqual([0, 0, 0, 0]);
      // Header complete, body not: out[3] carries the length field.
      expect(Array.from(scan(f, 0, 64).out.subarray(0, 4))).toEqual([0, 0, 0, f.length - 4]);
      expect(Array.from(scan(f, 0, f.length - 1).out.subarray(0, 4))).toEqual([0, 0, 0, f.length - 4]);
      // Zero-length chunk anywhere.
      expect(Array.from(scan(f, 17, 17).out.subarray(0, 4))).toEqual([0, 17, 0, 0]);
      expect(Array.from(scan(new Uint8Array(0)).out.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    });

    it('scan: stops when out is full', () => {
      const f = frame();
      const buf = concat([f, f, f]);
      const r = scan(buf, 0, buf.length, DEFAULT_MAX_FRAME, 2);
      expect(Array.from(r.out.subarray(0, 4))).toEqual([2, 2 * f.length, 0, 0]);
      const none = new Uint32Array(4);
      expect(impl.scanner.scan(buf, 0, buf.length, DEFAULT_MAX_FRAME, none)).toBe(0);
      expect(Array.from(none)).toEqual([0, 0, 0, 0]);
      // A length that is not 4 + 4k: the partial slot is left alone.
      const odd = new Uint32Array(4 + 4 + 3).fill(7);
      expect(impl.scanner.scan(buf, 0, buf.length, DEFAULT_MAX_FRAME, odd)).toBe(1);
      expect(Array.from(odd.subarray(8))).toEqual([7, 7, 7]);
    });

    it('scan: each header rule, in SPEC order, with the same code', () => {
      const good = frame({ topic: 'x.y', payload: new Uint8Array(8) });
      const at = (b: Uint8Array) => Array.from(scan(concat([good, b])).out.subarray(0, 4));
      const bad = (o: number, bytes: number[]) => patch(frame({ topic: 'x.y', payload: new Uint8Array(8) }), 0, o, bytes);
      const L = good.length;
      const magic = frame();
      magic[OFF.MAGIC] = 0x4e;
      expect(at(magic)).toEqual([1, L, E('MB_ERR_BAD_MAGIC'), 0]);
      // Magic is checked as soon as 6 bytes are there.
      expect(Array.from(scan(magic, 0, 6).out.subarray(0, 4))).toEqual([0, 0, E('MB_ERR_BAD_MAGIC'), 0]);
      const crc = frame();
      crc[OFF.CRC + 3] ^= 1;
      expect(at(crc)).toEqual([1, L, E('MB_ERR_BAD_CRC'), 0]);
      const seq = frame();
      seq[OFF.SEQ] ^= 0x80; // any covered byte
      expect(at(seq)).toEqual([1, L, E('MB_ERR_BAD_CRC'), 0]);
      expect(at(bad(OFF.VERSION, [2]))).toEqual([1, L, E('MB_ERR_UNSUPPORTED_VERSION'), 0]);
      expect(at(bad(OFF.TYPE, [0x99]))).toEqual([1, L, E('MB_ERR_UNKNOWN_TYPE'), 0]);
      expect(at(bad(OFF.FLAGS, [0, 4]))).toEqual([1, L, E('MB_ERR_RESERVED_BITS'), 0]);
      expect(at(bad(OFF.RESERVED, [1]))).toEqual([1, L, E('MB_ERR_RESERVED_BITS'), 0]);
      expect(at(bad(OFF.CRC - 1, [0x80]))).toEqual([1, L, E('MB_ERR_RESERVED_BITS'), 0]);
      expect(at(bad(OFF.PAYLOAD_LEN, [0, 0, 0, 9]))).toEqual([1, L, E('MB_ERR_LENGTH_MISMATCH'), 0]);
      // Version is checked before type, type before flags.
      expect(at(bad(OFF.VERSION, [0, 0x99]))).toEqual([1, L, E('MB_ERR_UNSUPPORTED_VERSION'), 0]);
      const big = frame({ payload: new Uint8Array(200) });
      expect(Array.from(scan(big, 0, big.length, 100).out.subarray(0, 4))).toEqual([0, 0, E('MB_ERR_FRAME_TOO_LARGE'), big.length - 4]);
      expect(Array.from(scan(big, 0, big.length, big.length - 4).out.subarray(0, 4))).toEqual([1, big.length, 0, 0]);
    });

    it('scan: a frame claiming 4 GiB', () => {
      const h = frame({ payloadLen: 0xffffffff - 60 - 3, topic: 'abc' });
      const huge = concat([h, new Uint8Array(100)]);
      expect(Array.from(scan(huge).out.subarray(0, 4))).toEqual([0, 0, E('MB_ERR_FRAME_TOO_LARGE'), 0xffffffff]);
      expect(Array.from(scan(huge, 0, huge.length, Infinity).out.subarray(0, 4))).toEqual([0, 0, 0, 0xffffffff]);
      expect(Array.from(scan(huge, 0, huge.length, 0xffffffff).out.subarray(0, 4))).toEqual([0, 0, 0, 0xffffffff]);
      // A lying length field with a valid CRC.
      const lie = frame();
      writeU32BE(lie, 0, 0xffffffff);
      patch(lie, 0, 0, []);
      expect(Array.from(scan(lie).out.subarray(0, 4))).toEqual([0, 0, E('MB_ERR_LENGTH_MISMATCH'), 0]);
    });

    it('scan: garbage never throws and never reports a frame', () => {
      let seed = 1;
      for (let n = 0; n < 300; n++) {
        const g = Uint8Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
        const r = scan(g);
        expect(r.n).toBe(0);
        expect(r.out[1]).toBe(0);
      }
    });

    it('writeHeader: refuses an origin that is not 8 bytes, like the reference', () => {
      const dst = new Uint8Array(64);
      for (const origin of [new Uint8Array(7), new Uint8Array(9)]) {
        expect(() => impl.writeHeader(dst, 0, { type: FrameType.PUB, origin })).toThrow(/origin must be 8 bytes/);
      }
    });

    it('a header written by writeHeader scans as valid', () => {
      const buf = new Uint8Array(FIXED_SIZE + 5);
      impl.writeHeader(buf, 0, { type: FrameType.PUB, topicLen: 5, topicHash: 42 });
      expect(Array.from(scan(buf).out.subarray(0, 8))).toEqual([1, buf.length, 0, 0, 0, buf.length, FrameType.PUB, 42]);
    });
  });
}

describe('ops: chosen once at load time', () => {
  it('uses the measured choice', () => {
    if (nativeOps) {
      expect(opsChoice).toEqual({ scan: 'native', crc32c: 'native', topicHash: 'js', writeHeader: 'js' });
      expect(ops.scanner.name).toBe('native');
      expect(ops.topicHash).toBe(jsOps.topicHash);
      expect(ops.writeHeader).toBe(jsOps.writeHeader);
      expect(ops.name).toBe('native');
    } else {
      expect(ops).toBe(jsOps);
    }
  });

  it('crc32c gives the same result on both sides of the size threshold', () => {
    const b = Uint8Array.from({ length: 1000 }, (_, i) => i * 13);
    for (const n of [0, 1, CRC_NATIVE_MIN_BYTES - 1, CRC_NATIVE_MIN_BYTES, CRC_NATIVE_MIN_BYTES + 1, 999]) {
      expect(ops.crc32c(b, 1, 1 + n)).toBe(jsOps.crc32c(b, 1, 1 + n));
      expect(ops.crc32c(b.subarray(0, n))).toBe(jsOps.crc32c(b.subarray(0, n)));
      expect(ops.crc32c(b, 1, 1 + n, 0x12345678)).toBe(jsOps.crc32c(b, 1, 1 + n, 0x12345678));
    }
  });

  it('scan gives the same out on both sides of the size threshold', () => {
    const f = frame({ payload: new Uint8Array(3) });
    const buf = concat([f, f, f, f]);
    for (let e = 0; e <= buf.length; e++) {
      const a = new Uint32Array(12).fill(1);
      const b = a.slice();
      expect(ops.scanner.scan(buf, 0, e, DEFAULT_MAX_FRAME, a)).toBe(jsOps.scanner.scan(buf, 0, e, DEFAULT_MAX_FRAME, b));
      expect(a).toEqual(b);
    }
    expect(SCAN_NATIVE_MIN_BYTES).toBe(128);
  });

  it('describeOps() is one line naming each choice', () => {
    const line = describeOps();
    expect(line).not.toContain('\n');
    expect(line.startsWith(`byte ops: ${ops.name}`)).toBe(true);
    if (nativeOps) expect(line).toMatch(/scan=native>=\d+B crc32c=native>=\d+B\/\S+ topicHash=js writeHeader=js/);
  });

  it('MESHBUS_NATIVE=0 forces the TypeScript fallback', async () => {
    vi.stubEnv('MESHBUS_NATIVE', '0');
    vi.resetModules();
    try {
      const m = await import('../src/index.js');
      expect(m.nativeOps).toBeUndefined();
      expect(m.ops).toBe(m.jsOps);
      expect(m.ops.name).toBe('js');
      expect(m.describeOps()).toBe('byte ops: js (native disabled by MESHBUS_NATIVE=0)');
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});

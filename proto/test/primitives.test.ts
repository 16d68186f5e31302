import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertProperty } from '@meshbus/testkit/property';
import { crc32c as crc32cSliced } from '../src/crc32c.js';
import { crc32c as crc32cCompact } from '../src/crc32c-compact.js';
import { topicHash } from '../src/topic-hash.js';
import * as utf8Js from '../src/utf8.js';
import * as utf8Platform from '../src/utf8-platform.js';
import { isMeshbusError } from '../src/errors.js';

/** The code of what `fn` throws (a MeshbusError), or undefined. */
function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    expect(isMeshbusError(e)).toBe(true);
    return (e as { code: string }).code;
  }
}
import { equalBytesAt, hex64, readU16, readU32, readU64, writeHex64, writeU16, writeU32, writeU64 } from '../src/bytes.js';

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Bit-at-a-time reference CRC32C. */
function crcRef(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) {
    c ^= x;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

// Both implementations: slicing-by-8 (Node, the fallback of the native addon) and the
// one-table one the browser and mobile bundles carry.
for (const [name, crc32c] of [
  ['crc32c (slicing-by-8)', crc32cSliced],
  ['crc32c (compact, browser bundles)', crc32cCompact],
] as const) {
  describe(name, () => {
    it('check value of "123456789" is 0xE3069283', () => {
      expect(crc32c(ascii('123456789'))).toBe(0xe3069283);
    });
    it('known values (RFC 3720 B.4)', () => {
      expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
      expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
      expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
      expect(crc32c(new Uint8Array(0))).toBe(0);
    });
    it('incremental use equals one pass, at every split', () => {
      const b = ascii('123456789abcdefghijklmnopqrstuvwxyz');
      for (let i = 0; i <= b.length; i++) expect(crc32c(b, i, b.length, crc32c(b, 0, i))).toBe(crc32c(b));
    });
    it('ranges: start/end select a sub-range', () => {
      const b = ascii('xx123456789yy');
      expect(crc32c(b, 2, 11)).toBe(0xe3069283);
    });
    it('matches a bitwise reference on random data at random offsets', () => {
      assertProperty(
        fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.nat(), (b, x, y) => {
          const s = x % (b.length + 1);
          const e = s + (y % (b.length - s + 1));
          expect(crc32c(b, s, e)).toBe(crcRef(b.subarray(s, e)));
          expect(crc32c(b, e, b.length, crc32c(b, s, e))).toBe(crcRef(b.subarray(s)));
        }),
        { numRuns: 300 },
      );
    });
  });
}

describe('topicHash (FNV-1a 32)', () => {
  it('standard FNV-1a values', () => {
    expect(topicHash(new Uint8Array(0))).toBe(0x811c9dc5);
    expect(topicHash(ascii('a'))).toBe(0xe40c292c);
    expect(topicHash(ascii('foobar'))).toBe(0xbf9cf968);
  });
  it('hashes a sub-range', () => {
    expect(topicHash(ascii('..foobar..'), 2, 8)).toBe(0xbf9cf968);
  });
});

describe('bytes helpers', () => {
  it('big-endian round trips', () => {
    const b = new Uint8Array(16);
    writeU16(b, 1, 0xabcd);
    expect(readU16(b, 1)).toBe(0xabcd);
    writeU32(b, 3, 0xfedcba98);
    expect(readU32(b, 3)).toBe(0xfedcba98);
    writeU64(b, 8, 2 ** 53 - 1);
    expect(readU64(b, 8)).toBe(2 ** 53 - 1);
    expect(Array.from(b.subarray(8))).toEqual([0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });
  it('hex64 / writeHex64', () => {
    const b = new Uint8Array(8);
    expect(writeHex64(b, 0, '0123456789abcdef')).toBe(true);
    expect(hex64(b, 0)).toBe('0123456789abcdef');
    expect(writeHex64(b, 0, '0123456789ABCDEF')).toBe(false);
    expect(writeHex64(b, 0, '01')).toBe(false);
  });
});

// The same suite for proto's UTF-8 and the browser bundles' platform version.
for (const [name, { loneSurrogateAt, utf8Decode, utf8Encode, utf8Length, utf8Write }] of [
  ['utf8', utf8Js],
  ['utf8-platform', utf8Platform],
] as const) {
describe(name, () => {
  const cases = ['', 'a.b.c', 'café', 'zürich.温度', '😀.x', 'x'.repeat(100), 'é'.repeat(100)];
  it('encodes like TextEncoder and decodes back', () => {
    for (const s of cases) {
      const want = new TextEncoder().encode(s);
      expect(Array.from(utf8Encode(s))).toEqual(Array.from(want));
      expect(utf8Length(s)).toBe(want.length);
      expect(utf8Decode(want)).toBe(s);
    }
  });
  it('a lone surrogate is refused (ClientError MB_ERR_INVALID_ARGUMENT), never written as U+FFFD', () => {
    for (const s of ['\ud800', 'a\udc00b', '\ud83dx', 'x\ud83d', 'a.\ud83d', 'y'.repeat(100) + '\udc00']) {
      expect(loneSurrogateAt(s)).toBeGreaterThanOrEqual(0);
      expect(code(() => utf8Encode(s))).toBe('MB_ERR_INVALID_ARGUMENT');
      expect(code(() => utf8Write(s, new Uint8Array(utf8Length(s)), 0))).toBe('MB_ERR_INVALID_ARGUMENT');
    }
    expect(loneSurrogateAt('😀' + 'z'.repeat(100))).toBe(-1);
  });
  it('keeps a leading BOM (U+FEFF) when decoding, with and without the platform decoder', () => {
    for (const s of ['\ufeff', '\ufeffdemo.x', '\ufeffhello', '\ufeff' + 'é'.repeat(100), '\ufeff' + 'x'.repeat(100)]) {
      expect(utf8Decode(utf8Encode(s))).toBe(s);
    }
  });
  it('property: every string round-trips exactly or is refused, ill-formed UTF-16 included', () => {
    const units = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 120 });
    fc.assert(
      fc.property(fc.oneof(units, fc.string({ unit: 'binary', maxLength: 120 }), units.map((s) => '\ufeff' + s)), (s) => {
        if (loneSurrogateAt(s) >= 0) {
          expect(code(() => utf8Encode(s))).toBe('MB_ERR_INVALID_ARGUMENT');
          return;
        }
        expect(utf8Decode(utf8Encode(s))).toBe(s);
      }),
      { numRuns: 1000 },
    );
  });
  it('property: utf8Length (ill-formed strings too) and utf8Write at an offset agree with utf8.ts', () => {
    const units = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 60 });
    fc.assert(
      fc.property(fc.oneof(units, fc.string({ unit: 'grapheme', maxLength: 60 })), fc.nat(5), (s, off) => {
        expect(utf8Length(s)).toBe(utf8Js.utf8Length(s));
        if (loneSurrogateAt(s) >= 0) return;
        const a = new Uint8Array(off + utf8Length(s) + 3).fill(7);
        const b = a.slice();
        expect(utf8Write(s, a, off)).toBe(utf8Js.utf8Write(s, b, off));
        expect(Array.from(a)).toEqual(Array.from(b));
      }),
      { numRuns: 1000 },
    );
  });
  it('rejects invalid UTF-8 with undefined', () => {
    for (const h of [[0x80], [0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc3], [0xff]]) {
      expect(utf8Decode(Uint8Array.from(h))).toBeUndefined();
    }
  });
  it('property: agrees with the platform codec on random strings and random bytes', () => {
    const td = new TextDecoder('utf-8', { fatal: true });
    assertProperty(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 80 }), fc.uint8Array({ maxLength: 80 }), (s, b) => {
        expect(Array.from(utf8Encode(s))).toEqual(Array.from(new TextEncoder().encode(s)));
        let want: string | undefined;
        try {
          want = td.decode(b);
        } catch {
          want = undefined;
        }
        expect(utf8Decode(b)).toBe(want);
      }),
      { numRuns: 500 },
    );
  });
});
}

describe('utf8 without TextEncoder/TextDecoder (Hermes)', () => {
  it('the module loaded with the globals deleted gives the same results', async () => {
    const g = globalThis as Record<string, unknown>;
    const te = g.TextEncoder;
    const tdc = g.TextDecoder;
    delete g.TextEncoder;
    delete g.TextDecoder;
    let slow: typeof import('../src/utf8.js');
    try {
      slow = await import('../src/utf8.js?no-text-codec' as string);
    } finally {
      g.TextEncoder = te;
      g.TextDecoder = tdc;
    }
    const td = new TextDecoder('utf-8', { fatal: true });
    // Any use of the platform codecs by the reloaded module now throws.
    const enc0 = TextEncoder.prototype.encode;
    const dec0 = TextDecoder.prototype.decode;
    const guarded = <R>(fn: () => R): R => {
      TextEncoder.prototype.encode = () => {
        throw new Error('TextEncoder used');
      };
      TextDecoder.prototype.decode = () => {
        throw new Error('TextDecoder used');
      };
      try {
        return fn();
      } finally {
        TextEncoder.prototype.encode = enc0;
        TextDecoder.prototype.decode = dec0;
      }
    };
    assertProperty(
      fc.property(fc.string({ unit: 'binary', maxLength: 150 }), fc.uint8Array({ maxLength: 150 }), (s, b) => {
        const enc = new TextEncoder().encode(s);
        let want: string | undefined;
        try {
          want = td.decode(b);
        } catch {
          want = undefined;
        }
        const [gotEnc, gotDec, gotRound] = guarded(() => [slow.utf8Encode(s), slow.utf8Decode(b), slow.utf8Decode(enc)] as const);
        expect(Array.from(gotEnc)).toEqual(Array.from(enc));
        expect(gotDec).toBe(want);
        expect(gotRound).toBe(td.decode(enc));
      }),
      { numRuns: 500 },
    );
    const long = utf8Js.utf8Encode('x'.repeat(200));
    expect(guarded(() => slow.utf8Decode(long))).toBe('x'.repeat(200));
    // Long text, decoded in chunks of code units (thirteenth session: a 3.5 MB string took the mobile bundle 1 s or more).
    for (const text of ['x'.repeat(100_000), 'aé€𝄞'.repeat(20_000), '𝄞'.repeat(9_000) + 'z']) {
      const bytes = new TextEncoder().encode(text);
      expect(guarded(() => slow.utf8Decode(bytes)) === text).toBe(true);
      const bad = new Uint8Array([...bytes, 0xc3]);
      expect(guarded(() => slow.utf8Decode(bad))).toBeUndefined();
    }
    // The normal module does use the platform codec for long text: the guard is effective.
    expect(() => guarded(() => utf8Js.utf8Encode('x'.repeat(200)))).toThrow('TextEncoder used');
  });
});

describe('equalBytesAt (the topic caches confirm a hash hit with it)', () => {
  it('compares a.length bytes of buf from start, so a hit needs the same bytes, not only the same hash', () => {
    const buf = new TextEncoder().encode('xxorders.eu.createdyy');
    expect(equalBytesAt(new TextEncoder().encode('orders.eu.created'), buf, 2)).toBe(true);
    expect(equalBytesAt(new TextEncoder().encode('orders.eu.createe'), buf, 2)).toBe(false);
    expect(equalBytesAt(new TextEncoder().encode('Orders.eu.created'), buf, 2)).toBe(false);
    expect(equalBytesAt(new TextEncoder().encode('orders.eu.created'), buf, 1)).toBe(false);
    expect(equalBytesAt(new Uint8Array(0), buf, 5)).toBe(true);
  });
});

// Differential tests of the browser build's msgpack (src/mini-msgpack.ts)
// against msgpackr, which the Node build keeps: same bytes on encode, same
// values on decode, for the subset meshbus uses; a clear error outside it.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { Packr, pack as mpPack, unpack as mpUnpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { assertPlainMsgpack } from '@meshbus/proto';
import { pack, unpack } from '../src/mini-msgpack.js';
import { bundle } from './bundles.js';

const here = dirname(fileURLToPath(import.meta.url));
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));

/**
 * Comparable form: bin (Buffer or Uint8Array) as tagged byte lists, -0 as 0
 * (msgpackr writes it as the integer 0), a `__proto__` key as `__proto_`
 * (what both decoders make of it).
 */
function norm(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bin: [...v] };
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === 'number' && Object.is(v, -0)) return 0;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k === '__proto__' ? '__proto_' : k, norm(x)]));
  return v;
}

// Well-formed strings of every code point range, short and long (fixstr, str8, str16).
const str = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 20, maxLength: 400 }),
);
const leaf = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.boolean(),
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
  fc.integer({ min: -300, max: 300 }),
  fc.maxSafeInteger(),
  fc.double(),
  str,
  fc.uint8Array({ maxLength: 300 }),
);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
  array: fc.array(tie('value'), { maxLength: 20 }),
  object: fc.dictionary(str, tie('value'), { maxKeys: 20, noNullPrototype: false }),
}));

/** Same bytes as msgpackr, and each decodes the other, to the value packed. */
const sameAsMsgpackr = fc.property(value, (v) => {
  const mine = pack(v);
  const theirs = mpPack(v);
  expect(hex(mine)).toBe(hex(theirs));
  expect(norm(mpUnpack(mine))).toEqual(norm(v));
  expect(norm(unpack(theirs))).toEqual(norm(mpUnpack(theirs)));
  expect(norm(unpack(mine))).toEqual(norm(v));
});

describe('mini-msgpack (browser build) against msgpackr', () => {
  // fast-check prints the seed and the counterexample of a failure (its default; nothing here hides it).
  it('encodes the same bytes as msgpackr, and each decodes the other', () => {
    fc.assert(sameAsMsgpackr, { numRuns: 2000 });
  });

  it('keeps a leading U+FEFF in strings (the run of seed 1204392426 lost it in the decoder)', () => {
    fc.assert(sameAsMsgpackr, { numRuns: 2000, seed: 1204392426 });
    for (const s of ['\uFEFF', '\uFEFFhello', '\uFEFFdemo.x', '\uFEFF' + 'é'.repeat(40), '\uFEFF' + 'x'.repeat(300)]) {
      expect(unpack(pack(s))).toBe(s);
      expect(unpack(mpPack(s))).toBe(s);
      expect(unpack(pack({ h: { [s]: s } }))).toEqual({ h: { [s]: s } });
    }
  });

  it('refuses a string with a lone surrogate (MB_ERR_INVALID_ARGUMENT) instead of writing U+FFFD', () => {
    const units = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 80 });
    fc.assert(
      fc.property(units, (s) => {
        const ill = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
        let code: string | undefined;
        try {
          expect(unpack(pack({ k: s, [s]: 1 }))).toEqual({ k: s, [s]: 1 });
        } catch (e) {
          code = (e as { code?: string }).code;
        }
        expect(code).toBe(ill ? 'MB_ERR_INVALID_ARGUMENT' : undefined);
      }),
      { numRuns: 1000 },
    );
  });

  it('integer and float boundaries', () => {
    const xs = [
      0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 64,
      -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1),
      0.5, -1.25, 1e300, Number.MIN_VALUE, Infinity, -Infinity, NaN, -0,
    ];
    for (const x of xs) {
      expect(hex(pack(x)), String(x)).toBe(hex(mpPack(x)));
      expect(unpack(mpPack(x))).toEqual(x === 0 ? 0 : x);
    }
  });

  it('length boundaries of str, bin, array and map (8, 16 and 32-bit headers)', () => {
    for (const n of [0, 15, 16, 31, 32, 255, 256, 65535, 65536, 70000]) {
      const cases: unknown[] = ['a'.repeat(n), 'é'.repeat(n >> 1), new Uint8Array(n).fill(7), Array.from({ length: n }, (_, i) => i & 127)];
      for (const v of cases) {
        expect(hex(pack(v))).toBe(hex(mpPack(v)));
        expect(norm(unpack(mpPack(v)))).toEqual(norm(v));
      }
      // Maps: msgpackr always writes map16 (and refuses more than 65535 keys); past that map32.
      const o = Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
      if (n < 65536) expect(hex(pack(o))).toBe(hex(mpPack(o)));
      expect(mpUnpack(pack(o))).toEqual(o);
      expect(unpack(new Packr({ variableMapSize: true, useRecords: false }).pack(o))).toEqual(o);
    }
  });

  it('64-bit integers decode as numbers when safe, else as bigint (and bigints encode as msgpackr does)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }), (b) => {
        expect(hex(pack(b))).toBe(hex(mpPack(b)));
        const safe = b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER);
        expect(unpack(mpPack(b))).toBe(safe ? Number(b) : b);
        expect(mpUnpack(pack(b))).toBe(b);
      }),
      { numRuns: 1000 },
    );
    for (const b of [0n, 1n, -1n, 2n ** 53n - 1n, 2n ** 53n, -(2n ** 53n), 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n)]) {
      const safe = b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER);
      expect(unpack(mpPack(b))).toBe(safe ? Number(b) : b);
    }
    expect(() => pack(2n ** 64n)).toThrow(/64 bits/);
  });

  it('decodes float32 like msgpackr', () => {
    const f32 = new Packr({ useFloat32: 1 });
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (x) => {
        const bytes = f32.pack(x);
        expect(unpack(bytes)).toBe(mpUnpack(bytes));
      }),
      { numRuns: 500 },
    );
  });

  it('decodes map keys as msgpackr does (__proto__ does not reach the prototype; number keys)', () => {
    const bytes = fromHex('82a95f5f70726f746f5f5f01' + '0702');
    const mine = unpack(bytes) as Record<string, unknown>;
    expect(Object.getPrototypeOf(mine)).toBe(Object.prototype);
    expect(mine).toEqual(mpUnpack(bytes));
  });

  it('binary values decode as views of the input, as msgpackr', () => {
    const bytes = pack({ b: new Uint8Array([1, 2, 3]) });
    const out = unpack(bytes) as { b: Uint8Array };
    expect(out.b).toBeInstanceOf(Uint8Array);
    expect(out.b.buffer).toBe(bytes.buffer);
    expect([...out.b]).toEqual([1, 2, 3]);
    // A view at an offset of a larger buffer decodes too.
    const big = new Uint8Array(10 + bytes.length);
    big.set(bytes, 10);
    expect(norm(unpack(big.subarray(10)))).toEqual({ b: { bin: [1, 2, 3] } });
  });

  it('class instances as maps or through their toJSON, functions as undefined, values of another realm (as msgpackr)', () => {
    class Pos {
      toJSON(): unknown {
        return { x: 1 };
      }
    }
    class Thing {
      x = 1;
      y = 'z';
    }
    for (const v of [new Pos(), new Thing(), { f: () => 1, a: [() => 2] }, Object.assign(Object.create(null), { a: 1 })]) {
      expect(hex(pack(v))).toBe(hex(mpPack(v)));
    }
    const other = runInNewContext('({ a: [1, { b: "x" }], u: new Uint8Array([1, 2]) })') as unknown;
    expect(hex(pack(other))).toBe(hex(pack({ a: [1, { b: 'x' }], u: new Uint8Array([1, 2]) })));
  });

  it('throws a clear error for extension types and values outside the subset', () => {
    for (const v of [new Date(0), new Map([[1, 2]]), new Set([1]), new Int16Array(2), new ArrayBuffer(2), /x/, Symbol('s')]) {
      expect(() => pack(v), String(v?.constructor?.name)).toThrow(/msgpack \(browser build\): cannot encode a (Date|Map|Set|Int16Array|ArrayBuffer|RegExp|symbol)/);
      expect(() => pack({ nested: [v] })).toThrow(/cannot encode/);
    }
    // Timestamp extension (msgpackr's Date), other fixext/ext sizes: refused, with the type.
    expect(() => unpack(mpPack(new Date(0)))).toThrow(/extension type 255 .*not supported/);
    expect(() => unpack(mpPack({ d: new Date(1e12) }))).toThrow(/extension type 255/);
    expect(() => unpack(fromHex('d50a0102'))).toThrow(/extension type 10/);
    expect(() => unpack(fromHex('c7030a010203'))).toThrow(/extension type 10/);
    expect(() => unpack(fromHex('c8000105ff'))).toThrow(/extension type 5/);
    expect(() => unpack(fromHex('c1'))).toThrow(/0xc1/);
    // undefined (fixext1 type 0) is in the subset.
    expect(unpack(fromHex('d40000'))).toBe(undefined);
    expect(unpack(fromHex('81a161d40000'))).toEqual({ a: undefined });
    // Non-string map keys that msgpackr would need mapsAsObjects: false for.
    expect(() => unpack(fromHex('81900a'))).toThrow(/map keys/);
  });

  it('refuses truncated input, trailing bytes, empty input and invalid UTF-8, like msgpackr', () => {
    const bytes = pack({ a: [1, 'xyz', new Uint8Array(4), 3.5, 70000, { b: null }], s: 'é'.repeat(40) });
    for (let n = 0; n < bytes.length; n++) {
      expect(() => unpack(bytes.subarray(0, n)), `prefix ${n}`).toThrow(/browser build/);
      expect(() => mpUnpack(bytes.subarray(0, n))).toThrow();
    }
    const extra = new Uint8Array(bytes.length + 1);
    extra.set(bytes);
    expect(() => unpack(extra)).toThrow(/trailing bytes/);
    expect(() => mpUnpack(extra)).toThrow();
    expect(() => unpack(fromHex('a2c328'))).toThrow(/UTF-8/);
  });

  it('every control body and extension block of proto/vectors/frames.json decodes identically and re-encodes to the same bytes', () => {
    const vectors = JSON.parse(readFileSync(join(here, '../../proto/vectors/frames.json'), 'utf8')) as {
      frames: { name: string; expect: { payload: string; ext: string; body?: unknown } }[];
    };
    let bodies = 0;
    let exts = 0;
    for (const f of vectors.frames) {
      const parts: string[] = [];
      if (f.expect.body !== undefined && f.expect.payload) parts.push(f.expect.payload);
      if (f.expect.ext) parts.push(f.expect.ext);
      for (const h of parts) {
        const bytes = fromHex(h);
        const mine = unpack(bytes);
        expect(norm(mine), f.name).toEqual(norm(mpUnpack(bytes)));
        expect(hex(pack(mine)), f.name).toBe(h);
      }
      if (f.expect.body !== undefined && f.expect.payload) {
        expect(norm(unpack(fromHex(f.expect.payload))), f.name).toEqual(norm(f.expect.body));
        bodies++;
      }
      if (f.expect.ext) exts++;
    }
    expect(bodies).toBeGreaterThanOrEqual(5);
    expect(exts).toBeGreaterThanOrEqual(1);
  });

  it('whatever the shared subset check (proto assertPlainMsgpack, run before every extension block is decoded) accepts, both decoders decode alike', () => {
    // Blocks a hostile publisher may send: valid values with random bytes changed, cut or added.
    const mutated = fc.tuple(value, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat()).map(([v, edits, cut]) => {
      const b = Uint8Array.from(mpPack(v));
      for (const [at, byte] of edits) if (b.length > 0) b[at % b.length] = byte;
      return cut % 7 === 0 && b.length > 1 ? b.subarray(0, b.length - 1 - (cut % b.length)) : b;
    });
    let accepted = 0;
    fc.assert(
      fc.property(mutated, (b) => {
        try {
          assertPlainMsgpack(b);
        } catch {
          return;
        }
        accepted++;
        expect(norm(unpack(b))).toEqual(norm(mpUnpack(b)));
      }),
      { numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(100);
    // The cases that differed before the check: each is refused now, so neither decoder sees it.
    const differed = {
      'a timestamp in an unknown key': '82a16881a161a162a178d6ff00000001',
      'a header value of ill-formed UTF-8 (msgpackr: U+FFFD)': '81a16881a161a2ff61',
      'a msgpackr record': 'd4724091a168a178',
      'nesting deeper than MAX_EXT_DEPTH': `81a178${'91'.repeat(40)}c0`,
      // Found by this property (seed 1513804324): msgpackr reads an int64 1 as 1n, mini-msgpack as 1.
      'an int64 (msgpackr: a bigint)': 'd30000000000000001',
      'a uint64 in a map (msgpackr: a bigint)': '81a178cf0000000000000001',
    };
    for (const [what, h] of Object.entries(differed)) expect(() => assertPlainMsgpack(fromHex(h)), what).toThrow(/MB_ERR_BAD_EXTENSION|not|nested|extension|64-bit/);
  });

  it('the browser and mobile bundles carry mini-msgpack, not msgpackr', () => {
    for (const name of ['meshbus.esm.js', 'meshbus.iife.js', 'meshbus.mobile.js'] as const) {
      const code = bundle(name);
      expect(code.includes('msgpack (browser build)'), name).toBe(true);
      expect(code.includes('end of buffer not reached'), name).toBe(false);
    }
  });
});

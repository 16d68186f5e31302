import fc from 'fast-check';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { assertPlainMsgpack, decodeExtension, encodeExtension } from '../src/index.js';
import { MAX_EXT_DEPTH } from '../src/msgpack-subset.js';

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** A str8 holding `bytes`. */
const str8 = (bytes: Uint8Array): Uint8Array => Uint8Array.from([0xd9, bytes.length, ...bytes]);

describe('assertPlainMsgpack: the msgpack subset of extension blocks (SPEC §8)', () => {
  it('accepts what encodeExtension and msgpackr make of plain values', () => {
    for (const ext of [{ headers: { a: 'b', 'ü€😀': '\uFEFFx' } }, { reply: '_INBOX.a.b' }, { position: { epoch: 'e', offset: 2 ** 40 } }, { trace: '0123456789abcdef', delay: 1 }]) {
      expect(() => decodeExtension(encodeExtension(ext)!)).not.toThrow();
    }
    for (const v of [{ a: [1, -1, -200, 70_000, 2 ** 40, -(2 ** 40), 1.5, null, true, false, undefined, new Uint8Array(300)] }, { 1: 'number key' }, { s: 'x'.repeat(70_000) }]) {
      expect(() => assertPlainMsgpack(pack(v))).not.toThrow();
    }
  });

  it('refuses extension types, 0xc1, keys that are not strings or numbers, trailing and missing bytes', () => {
    const bad = ['d6ff00000001', 'd4720091a161', 'c7020501ff', 'd50100ff', 'c1', '81c0c0', '8190c0', '80c0', '92c0', 'a3616263ff', 'd9', 'dc0003c0c0'];
    for (const h of bad) expect(() => assertPlainMsgpack(hex(h)), h).toThrow(expect.objectContaining({ code: 'MB_ERR_BAD_EXTENSION' }));
  });

  it(`nesting: ${MAX_EXT_DEPTH} containers deep is accepted, one more is refused`, () => {
    expect(() => assertPlainMsgpack(hex(`${'91'.repeat(MAX_EXT_DEPTH)}c0`))).not.toThrow();
    expect(() => assertPlainMsgpack(hex(`${'91'.repeat(MAX_EXT_DEPTH + 1)}c0`))).toThrow(/nested/);
    // 65,535 bytes of nesting cost one pass, no stack.
    expect(() => assertPlainMsgpack(new Uint8Array(65_535).fill(0x91))).toThrow(/nested/);
  });

  it('strings: accepted exactly when they are well-formed UTF-8 (overlongs, surrogates, past U+10FFFF, cut sequences refused)', () => {
    for (const h of ['c0af', 'e08080', 'eda080', 'f4908080', 'f88080808080', 'e282', 'ff', 'c3']) {
      expect(() => assertPlainMsgpack(str8(hex(h))), h).toThrow(/UTF-8/);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        let ok = true;
        try {
          fatal.decode(bytes);
        } catch {
          ok = false;
        }
        let mine = true;
        try {
          assertPlainMsgpack(str8(bytes));
        } catch {
          mine = false;
        }
        expect(mine).toBe(ok);
      }),
      { numRuns: 5000 },
    );
  });

  it('whatever it accepts, msgpackr decodes (random byte strings)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        try {
          assertPlainMsgpack(b);
        } catch {
          return;
        }
        expect(() => unpack(b)).not.toThrow();
      }),
      { numRuns: 20_000 },
    );
  });
});

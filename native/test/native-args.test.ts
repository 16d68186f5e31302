/**
 * The addon validates its arguments before touching a byte: wrong kinds
 * throw TypeError, out-of-range offsets RangeError, and nothing is read or
 * written outside the caller's arrays.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME, FrameType, SCAN_META, SCAN_SLOTS } from '@meshbus/proto';
import { jsOps, nativeOps } from '../src/index.js';
import { NATIVE_NOTE, concat, frame, needNative } from './helpers.js';

describe(`native argument checks${NATIVE_NOTE}`, () => {
  if (!nativeOps) {
    it('argument checks of the addon (skipped without it, a failure under MESHBUS_REQUIRE_NATIVE=1)', (ctx) => {
      expect(needNative(ctx).name).toBe('native');
    });
    return;
  }
  const n = nativeOps;
  const scan = n.scanner.scan as (...a: unknown[]) => number;
  const crc = n.crc32c as (...a: unknown[]) => number;
  const hash = n.topicHash as (...a: unknown[]) => number;
  const buf = concat([frame(), frame()]);
  const out = new Uint32Array(SCAN_META + SCAN_SLOTS * 4);
  const M = DEFAULT_MAX_FRAME;

  it('scan: wrong kinds throw TypeError', () => {
    for (const b of ['x', null, undefined, 5, [1, 2], new Uint16Array(8), new Int8Array(8), new DataView(new ArrayBuffer(8)), new ArrayBuffer(8)]) {
      expect(() => scan(b, 0, 0, M, out)).toThrow(TypeError);
    }
    for (const o of [null, [0, 0, 0, 0], new Int32Array(8), new Float64Array(8), new Uint8Array(32)]) {
      expect(() => scan(buf, 0, 0, M, o)).toThrow(TypeError);
    }
    expect(() => scan(buf, '0', 1, M, out)).toThrow(TypeError);
    expect(() => scan(buf, 0, 1n, M, out)).toThrow(TypeError);
    expect(() => scan(buf, 0, 1, '9', out)).toThrow(TypeError);
    expect(() => scan(buf, 0, 1, M)).toThrow(TypeError);
    expect(() => scan()).toThrow(TypeError);
  });

  it('scan: out-of-range offsets throw RangeError with a Node-style code', () => {
    const bad: Array<[number, number]> = [
      [-1, 10],
      [0, buf.length + 1],
      [10, 9],
      [0.5, 10],
      [0, 10.5],
      [NaN, 10],
      [0, NaN],
      [0, Infinity],
      [-Infinity, 0],
      [2 ** 32, 2 ** 32],
    ];
    for (const [s, e] of bad) expect(() => scan(buf, s, e, M, out), `${s},${e}`).toThrow(RangeError);
    try {
      scan(buf, 0, buf.length + 1, M, out);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('ERR_OUT_OF_RANGE');
    }
    expect(() => scan(buf, 0, 10, NaN, out)).toThrow(RangeError);
    expect(() => scan(buf, 0, 10, M, new Uint32Array(3))).toThrow(RangeError);
    expect(() => scan(buf, 0, 10, M, new Uint32Array(0))).toThrow(RangeError);
    // `repeats`: proto's Repeats (0, 1, 2) or a boolean; another number is no compare the addon has.
    for (const r of [3, -1, 1.5, NaN, Infinity]) expect(() => scan(buf, 0, 10, M, out, r), String(r)).toThrow(RangeError);
    for (const r of [0, 1, 2, true, false, undefined, 'yes']) expect(() => scan(buf, 0, 10, M, out, r), String(r)).not.toThrow();
  });

  it('scan: bounds are the view, not its ArrayBuffer', () => {
    const ab = new ArrayBuffer(buf.length + 100);
    new Uint8Array(ab).set(buf, 50);
    const view = new Uint8Array(ab, 50, 70); // cuts the second frame's header
    expect(() => scan(view, 0, 71, M, out)).toThrow(RangeError);
    expect(scan(view, 0, 70, M, out)).toBe(1);
    expect(Array.from(out.subarray(0, 4))).toEqual([1, 64 + 3, 0, 0]);
    const b = Buffer.from(buf); // may sit inside Node's shared pool
    expect(scan(b, 0, b.length, M, out)).toBe(2);
  });

  it('scan, crc32c, topicHash on a detached buffer: empty, never a stale pointer', () => {
    const ab = new ArrayBuffer(256);
    const u = new Uint8Array(ab);
    u.set(buf.subarray(0, 128));
    structuredClone(ab, { transfer: [ab] });
    expect(u.length).toBe(0);
    expect(scan(u, 0, 0, M, out)).toBe(0);
    expect(() => scan(u, 0, 64, M, out)).toThrow(RangeError);
    expect(crc(u)).toBe(0);
    expect(hash(u)).toBe(0x811c9dc5);
    const o = new Uint32Array(8);
    const ob = o.buffer;
    structuredClone(ob, { transfer: [ob] });
    expect(() => scan(buf, 0, 0, M, o)).toThrow(RangeError);
  });

  it('crc32c and topicHash: defaults, wrong kinds, ranges', () => {
    for (const f of [crc, hash]) {
      expect(f(buf)).toBe(f(buf, 0, buf.length));
      expect(f(buf, undefined, undefined)).toBe(f(buf));
      expect(f(buf, 3)).toBe(f(buf, 3, buf.length));
      expect(() => f()).toThrow(TypeError);
      expect(() => f('abc')).toThrow(TypeError);
      expect(() => f(new Uint32Array(4))).toThrow(TypeError);
      expect(() => f(buf, null)).toThrow(TypeError);
      expect(() => f(buf, -1)).toThrow(RangeError);
      expect(() => f(buf, 0, buf.length + 1)).toThrow(RangeError);
      expect(() => f(buf, 5, 4)).toThrow(RangeError);
      expect(() => f(buf, 1.5)).toThrow(RangeError);
    }
    expect(crc(buf, 0, 10, undefined)).toBe(jsOps.crc32c(buf, 0, 10));
    expect(() => crc(buf, 0, 10, 'x')).toThrow(TypeError);
    // crc is taken modulo 2^32, as JS's ~ does.
    expect(crc(buf, 0, 10, -1)).toBe(jsOps.crc32c(buf, 0, 10, -1));
    expect(crc(buf, 0, 10, 2 ** 32 + 5)).toBe(jsOps.crc32c(buf, 0, 10, 2 ** 32 + 5));
  });

  it('writeHeader: the slot must fit inside dst', () => {
    const f = { type: FrameType.PUB };
    expect(() => n.writeHeader(new Uint8Array(63), 0, f)).toThrow(RangeError);
    expect(() => n.writeHeader(new Uint8Array(64), 1, f)).toThrow(RangeError);
    expect(() => n.writeHeader(new Uint8Array(128), -1, f)).toThrow(RangeError);
    expect(() => n.writeHeader(new Uint8Array(128), 64.5, f)).toThrow(RangeError);
    expect(() => n.writeHeader(new Uint16Array(64) as unknown as Uint8Array, 0, f)).toThrow(TypeError);
    expect(() => n.writeHeader(new Uint8Array(128), 0, { type: 'PUB' as unknown as FrameType })).toThrow(TypeError);
    expect(() => n.writeHeader(new Uint8Array(128), 0, { type: FrameType.PUB, origin: [1, 2, 3, 4, 5, 6, 7, 8] as unknown as Uint8Array })).toThrow(TypeError);
    const dst = new Uint8Array(200).fill(9);
    n.writeHeader(dst, 136, f);
    expect(Array.from(dst.subarray(0, 136)).every((b) => b === 9)).toBe(true);
  });
});

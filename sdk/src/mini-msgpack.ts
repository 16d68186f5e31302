/**
 * A minimal MessagePack codec for the browser and mobile bundles only:
 * scripts/build-browser.mjs aliases `msgpackr` to this file, so proto's
 * control bodies and extension blocks and the SDK's MsgpackCodec use it
 * there (1.3 KB of the gzipped bundle instead of msgpackr's 11.5 KB). Node
 * builds keep msgpackr.
 *
 * Wire-compatible with msgpackr's default `pack`/`unpack` for the subset
 * meshbus uses, and byte-identical on encode: nil, booleans, integers (the
 * smallest width; beyond 32 bits float64, as msgpackr), float64 (float32 is
 * decoded), UTF-8 strings (proto's helpers: no TextEncoder needed), bin
 * (Uint8Array; decoded as a view of the input, as msgpackr does), arrays,
 * maps with string keys (objects: class instances through their toJSON when
 * they have one, as msgpackr; always written as map16 like msgpackr, map32
 * past 65535 keys; decoded to plain objects), `undefined` (fixext1 type 0, as msgpackr),
 * bigint (int64/uint64). 64-bit integers decode to numbers when safe, else to
 * bigint. Other extension types (timestamps/Date, records, Map, Set, other
 * typed arrays, ArrayBuffer, RegExp, Error...) and symbols throw an Error that
 * says so.
 */
import { utf8Decode, utf8Length, utf8Write } from '@meshbus/proto';

const fail = (what: string): never => {
  throw new Error(`msgpack (browser build): ${what}`);
};

/** Encodes `value` as MessagePack (msgpackr's default encoding for the subset). */
export function pack(value: unknown): Uint8Array {
  let buf = new Uint8Array(64);
  let view = new DataView(buf.buffer);
  let pos = 0;
  /** Room for n more bytes; returns the position to write at and advances past them. */
  const room = (n: number): number => {
    if (pos + n > buf.length) {
      const b = new Uint8Array(Math.max(buf.length * 2, pos + n));
      b.set(buf);
      buf = b;
      view = new DataView(b.buffer);
    }
    const p = pos;
    pos += n;
    return p;
  };
  /** Writes `code`, reserves `len` bytes after it and returns their position. */
  const head = (code: number, len: number): number => {
    const p = room(len + 1);
    buf[p] = code;
    return p + 1;
  };
  /** `code` then `n` in `len` big-endian bytes (two's complement for negative integers). */
  const be = (code: number, n: number, len: number): void => {
    const p = head(code, len);
    for (let i = len; i--; n = Math.floor(n / 256)) buf[p + i] = n & 255;
  };
  /** A length as 8 (when c8 is given), 16 or 32 bits; the 32-bit code follows the 16-bit one. */
  const size = (n: number, c16: number, c8?: number): void =>
    c8 !== undefined && n < 256 ? be(c8, n, 1) : n < 65536 ? be(c16, n, 2) : be(c16 + 1, n, 4);
  const w = (v: unknown): void => {
    switch (typeof v) {
      case 'string': {
        const n = utf8Length(v);
        n < 32 ? be(0xa0 | n, 0, 0) : size(n, 0xda, 0xd9);
        const p = room(n); // before reading `buf`: room() may replace it
        utf8Write(v, buf, p);
        return;
      }
      case 'number':
        // As msgpackr: 32-bit integers in the smallest form, anything else (2^32 and above too) as float64.
        if (v >>> 0 === v) v < 128 ? be(v, 0, 0) : size(v, 0xcd, 0xcc);
        else if (v >> 0 === v) v >= -32 ? be(v & 255, 0, 0) : v >= -128 ? be(0xd0, v, 1) : v >= -32768 ? be(0xd1, v, 2) : be(0xd2, v, 4);
        else {
          const p = head(0xcb, 8); // before reading `view`: head() may replace it
          view.setFloat64(p, v);
        }
        return;
      case 'boolean':
        return be(v ? 0xc3 : 0xc2, 0, 0);
      case 'undefined':
      case 'function':
        return be(0xd4, 0, 2);
      case 'bigint':
        if (v < 2 ** 63 && v >= -(2 ** 63)) {
          const p = head(0xd3, 8);
          view.setBigInt64(p, v);
        } else if (v < 2 ** 64 && v > 0) {
          const p = head(0xcf, 8);
          view.setBigUint64(p, v);
        } else fail(`${v} does not fit in 64 bits`);
        return;
      case 'object': {
        if (v === null) return be(0xc0, 0, 0);
        if (Array.isArray(v)) {
          v.length < 16 ? be(0x90 | v.length, 0, 0) : size(v.length, 0xdc);
          for (const x of v) w(x);
          return;
        }
        // By tag rather than instanceof/prototype, so values from another realm (a vm context, an iframe) work.
        const tag = Object.prototype.toString.call(v).slice(8, -1);
        if (tag === 'Uint8Array') {
          const b = v as Uint8Array;
          size(b.length, 0xc5, 0xc4);
          const p = room(b.length);
          buf.set(b, p);
          return;
        }
        if (tag === 'Object') {
          // As msgpackr: a class instance goes through its toJSON when it has one, else is written as a map.
          const proto = Object.getPrototypeOf(v) as unknown;
          const toJSON = (v as { toJSON?: () => unknown }).toJSON;
          if (proto !== null && proto !== Object.prototype && typeof toJSON === 'function') return w(toJSON.call(v));
          const keys = Object.keys(v);
          size(keys.length, 0xde);
          for (const k of keys) w(k), w((v as Record<string, unknown>)[k]);
          return;
        }
        fail(`cannot encode a ${tag} (msgpack extension types are not supported)`);
      }
    }
    fail(`cannot encode a ${typeof v}`);
  };
  w(value);
  return buf.subarray(0, pos);
}

/**
 * Decodes exactly one MessagePack value filling `bytes` (msgpackr's default
 * decoding for the subset). With `budget`, fails at the map or array past
 * that many (proto msgpack-subset-bundle.ts: what another process wrote is
 * bounded as nodes bound it, counted in this one pass).
 */
export function unpack(bytes: Uint8Array, budget = Infinity): any {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = bytes.length;
  let pos = 0;
  const take = (n: number): number => {
    if (pos + n > end) fail('unexpected end of data');
    const p = pos;
    pos += n;
    return p;
  };
  const uint = (len: number): number => {
    let n = 0;
    for (let p = take(len), e = p + len; p < e; p++) n = n * 256 + bytes[p]!;
    return n;
  };
  const str = (n: number): string => {
    const p = take(n);
    return utf8Decode(bytes, p, p + n) ?? fail('string is not valid UTF-8');
  };
  const arr = (n: number): unknown[] => {
    if (--budget < 0) fail('too many maps and arrays');
    const a: unknown[] = [];
    while (n--) a.push(read());
    return a;
  };
  const map = (n: number): Record<string, unknown> => {
    if (--budget < 0) fail('too many maps and arrays');
    const o: Record<string, unknown> = {};
    while (n--) {
      let k = read();
      if (typeof k !== 'string' && typeof k !== 'number') fail('map keys must be strings');
      // As msgpackr: never set the prototype of the result.
      if (k === '__proto__') k = '__proto_';
      o[k as string] = read();
    }
    return o;
  };
  /** 64-bit integer: a number when safe, else a bigint. */
  const i64 = (signed: boolean): number | bigint => {
    const p = take(8);
    const n = (signed ? view.getInt32(p) : view.getUint32(p)) * 4294967296 + view.getUint32(p + 4);
    return Number.isSafeInteger(n) ? n : signed ? view.getBigInt64(p) : view.getBigUint64(p);
  };
  const read = (): unknown => {
    const t = bytes[take(1)]!;
    if (t < 0x80) return t;
    if (t < 0x90) return map(t & 15);
    if (t < 0xa0) return arr(t & 15);
    if (t < 0xc0) return str(t & 31);
    if (t >= 0xe0) return t - 256;
    switch (t) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
      case 0xc5:
      case 0xc6: {
        const n = uint(1 << (t - 0xc4));
        const p = take(n);
        return bytes.subarray(p, p + n);
      }
      case 0xca:
        return view.getFloat32(take(4));
      case 0xcb:
        return view.getFloat64(take(8));
      case 0xcc:
      case 0xcd:
      case 0xce:
        return uint(1 << (t - 0xcc));
      case 0xcf:
        return i64(false);
      case 0xd0:
        return view.getInt8(take(1));
      case 0xd1:
        return view.getInt16(take(2));
      case 0xd2:
        return view.getInt32(take(4));
      case 0xd3:
        return i64(true);
      case 0xd9:
      case 0xda:
      case 0xdb:
        return str(uint(1 << (t - 0xd9)));
      case 0xdc:
      case 0xdd:
        return arr(uint(2 << (t - 0xdc)));
      case 0xde:
      case 0xdf:
        return map(uint(2 << (t - 0xde)));
    }
    // Extensions: fixext 1..16 (0xd4..0xd8), ext 8/16/32 (0xc7..0xc9); 0xc1 is never used.
    if (t >= 0xd4) {
      const type = bytes[take(1)];
      take(1 << (t - 0xd4));
      if (t === 0xd4 && type === 0) return undefined;
      return fail(`extension type ${type} (e.g. a timestamp) is not supported`);
    }
    return fail(t === 0xc1 ? 'byte 0xc1 is never used' : `extension type ${bytes[pos + (1 << (t - 0xc7))]} is not supported`);
  };
  const v = read();
  if (pos < end) fail('trailing bytes after the value');
  return v;
}

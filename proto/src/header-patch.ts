import { CRC_TABLE } from './crc32c.js';
import { CRC_COVERED, OFF } from './constants.js';

/**
 * Header fields changed in place with the CRC updated incrementally instead
 * of recomputed over the 60 covered bytes. CRC32C is linear: for two
 * messages of the same length, crc(a) ^ crc(b) is the raw CRC (no initial or
 * final inversion) of a ^ b, which for a change of the byte at position p
 * from x to y is one table entry, POS[p][x ^ y]. A node rewrites 20 of the
 * 60 bytes when it stamps an event (origin, sequence, sid; the timestamp
 * when the client left it 0) and 5 when it forwards one (hops, sid), and most
 * of those bytes do not change from one event to the next: a few lookups
 * instead of 60 (bench/README.md, "Profile").
 *
 * Precondition: the header's stored CRC is valid for its current bytes (any
 * frame the decoder handed out, or one this process encoded). Then the
 * result equals `resealHeader` after the same writes; a header whose CRC was
 * already wrong stays wrong (and is refused by the next decoder), where
 * resealHeader would have made it valid.
 *
 * Usage: sum the deltas of the patch functions with `^`, then `applyCrcDelta`.
 */

/** POS[p * 256 + v]: raw CRC contribution of byte value v at header position p (0 ≤ p < 60). Built on first use (61 KB). */
let POS: Int32Array | undefined;

function positionTables(): Int32Array {
  const T = CRC_TABLE;
  const t = new Int32Array(CRC_COVERED * 256);
  for (let v = 0; v < 256; v++) {
    // Byte v from a zero register (position 59), then one zero byte more for each earlier position.
    let c = T[v]!;
    for (let p = CRC_COVERED - 1; p >= 0; p--) {
      t[p * 256 + v] = c;
      c = T[c & 0xff]! ^ (c >>> 8);
    }
  }
  return t;
}

function tables(): Int32Array {
  return (POS ??= positionTables());
}

/**
 * The CRC delta of changing the header byte at position `pos` (0 ≤ pos < 60)
 * by `x` (old value XOR new value, 0..255): one table entry. For callers that
 * keep deltas of bytes they write often (core event-stamp.ts).
 */
export function byteDelta(pos: number, x: number): number {
  return tables()[pos * 256 + x]!;
}

/** Sets byte `field` of the header at `buf[off]` to `v`; returns its CRC delta. */
export function patchU8(buf: Uint8Array, off: number, field: number, v: number): number {
  const i = off + field;
  const x = (buf[i]! ^ v) & 0xff;
  if (x === 0) return 0;
  buf[i] = v;
  return tables()[field * 256 + x]!;
}

/** Sets the big-endian u32 at header field `field` to `v`; returns its CRC delta. */
export function patchU32(buf: Uint8Array, off: number, field: number, v: number): number {
  const P = tables();
  const i = off + field;
  const p = field * 256;
  const b0 = v >>> 24;
  const b1 = (v >>> 16) & 0xff;
  const b2 = (v >>> 8) & 0xff;
  const b3 = v & 0xff;
  const d = P[p + (buf[i]! ^ b0)]! ^ P[p + 256 + (buf[i + 1]! ^ b1)]! ^ P[p + 512 + (buf[i + 2]! ^ b2)]! ^ P[p + 768 + (buf[i + 3]! ^ b3)]!;
  buf[i] = b0;
  buf[i + 1] = b1;
  buf[i + 2] = b2;
  buf[i + 3] = b3;
  return d;
}

/** Sets the big-endian u64 at header field `field` to `v` (an integer below 2^53); returns its CRC delta. */
export function patchU64(buf: Uint8Array, off: number, field: number, v: number): number {
  return patchU32(buf, off, field, Math.floor(v / 0x100000000)) ^ patchU32(buf, off, field + 4, v >>> 0);
}

/** Copies the 8 bytes `src` into header field `field`; returns their CRC delta. */
export function patchBytes8(buf: Uint8Array, off: number, field: number, src: Uint8Array): number {
  const P = tables();
  const i = off + field;
  let d = 0;
  for (let k = 0; k < 8; k++) {
    const x = buf[i + k]! ^ src[k]!;
    if (x !== 0) {
      d ^= P[(field + k) * 256 + x]!;
      buf[i + k] = src[k]!;
    }
  }
  return d;
}

/** Applies the summed deltas to the stored CRC of the header at `buf[off]`. */
export function applyCrcDelta(buf: Uint8Array, off: number, delta: number): void {
  if (delta === 0) return;
  const i = off + OFF.CRC;
  const c = (((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) ^ delta) >>> 0;
  buf[i] = c >>> 24;
  buf[i + 1] = c >>> 16;
  buf[i + 2] = c >>> 8;
  buf[i + 3] = c;
}

/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of the
 * frame header. Slicing-by-8 tables: eight bytes per step with no allocation.
 * The native addon computes the same function with the CPU's CRC instruction.
 */

const POLY = 0x82f63b78;
const T = new Int32Array(8 * 256);
/** The byte table (first 256 entries): one CRC step is `T[(c ^ byte) & 0xff] ^ (c >>> 8)` (header-patch.ts builds on it). */
export const CRC_TABLE: Int32Array = T;
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
  T[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = T[n]!;
  for (let s = 1; s < 8; s++) {
    c = T[c & 0xff]! ^ (c >>> 8);
    T[s * 256 + n] = c;
  }
}

/**
 * CRC32C of `buf[start, end)`, continuing from `crc` (pass the previous
 * result to checksum data in pieces). Returns an unsigned 32-bit integer.
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  let c = ~crc;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const a = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c =
      T[1792 + (a & 0xff)]! ^
      T[1536 + ((a >>> 8) & 0xff)]! ^
      T[1280 + ((a >>> 16) & 0xff)]! ^
      T[1024 + (a >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^
      T[512 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) c = T[(c ^ buf[i++]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

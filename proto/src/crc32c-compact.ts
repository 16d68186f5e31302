/**
 * CRC32C (Castagnoli), the same function as crc32c.ts with one 256-entry
 * table, a byte per step: smaller code, slower on long inputs. The browser
 * and mobile bundles of the SDK use it in place of crc32c.ts (their build
 * swaps the module); a client checksums 60-byte headers only, where the
 * difference is a few hundred nanoseconds per frame.
 */

const T = new Int32Array(256);
/** The byte table, as crc32c.ts exports it (its first 256 entries): header-patch.ts builds on it. */
export const CRC_TABLE: Int32Array = T;
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[n] = c;
}

/**
 * CRC32C of `buf[start, end)`, continuing from `crc` (pass the previous
 * result to checksum data in pieces). Returns an unsigned 32-bit integer.
 */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  let c = ~crc;
  for (let i = start; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

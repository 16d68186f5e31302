/** Big-endian integer access on plain Uint8Arrays (no DataView allocation per read). */

export function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** Reads a u64 as a JS number; exact below 2^53, which every counter stays under. */
export function readU64(b: Uint8Array, o: number): number {
  return readU32(b, o) * 0x100000000 + readU32(b, o + 4);
}

export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}

export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

export function writeU64(b: Uint8Array, o: number, v: number): void {
  writeU32(b, o, Math.floor(v / 0x100000000));
  writeU32(b, o + 4, v >>> 0);
}

/** 16 lowercase hex digits of an 8-byte id at `b[o]`. */
export function hex64(b: Uint8Array, o: number): string {
  let s = '';
  for (let i = o; i < o + 8; i++) s += (b[i]! < 16 ? '0' : '') + b[i]!.toString(16);
  return s;
}

/** Parses 16 hex digits into 8 bytes at `b[o]`; returns false when `s` is not such a string. */
export function writeHex64(b: Uint8Array, o: number, s: string): boolean {
  if (!/^[0-9a-f]{16}$/.test(s)) return false;
  for (let i = 0; i < 8; i++) b[o + i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return true;
}

/**
 * A copy of `b[start, end)` as a plain Uint8Array. Not `b.slice()`: on a Node
 * Buffer, slice returns a view that shares memory.
 */
export function copyBytes(b: Uint8Array, start = 0, end = b.length): Uint8Array {
  return Uint8Array.prototype.slice.call(b, start, end);
}

/**
 * Whether `buf[start, start + a.length)` holds the bytes of `a` (the caller
 * checked that many bytes are there). The caches keyed by a frame's topic
 * hash (the node's route cache, the JWT decision cache, the durable rules' cache) confirm a hit with
 * it, so a forged or colliding hash can only miss. A plain loop: topics are
 * short, and V8 inlines it into the callers' hot paths.
 */
export function equalBytesAt(a: Uint8Array, buf: Uint8Array, start: number): boolean {
  const len = a.length;
  let i = 0;
  while (i < len && a[i] === buf[start + i]) i++;
  return i === len;
}

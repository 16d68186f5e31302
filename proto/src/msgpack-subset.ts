import { unpack } from 'msgpackr';
import { MAX_EXT_CONTAINERS } from './constants.js';
import { ProtocolError } from './errors.js';

/**
 * Deepest nesting of arrays and maps an extension block may have (SPEC §8):
 * a depth every decoder reaches without running out of stack (msgpackr on
 * nodes failed near 3,000, the bundles' recursive decoder decoded that and
 * more, a small-stack runtime such as Hermes fails earlier).
 */
export const MAX_EXT_DEPTH = 32;

let failCode: 'MB_ERR_BAD_EXTENSION' | 'MB_ERR_BAD_BODY' = 'MB_ERR_BAD_EXTENSION';
const fail = (what: string): never => {
  throw new ProtocolError(failCode, what);
};

/**
 * Throws ProtocolError MB_ERR_BAD_EXTENSION unless `b` is exactly one
 * msgpack value of the subset every meshbus decoder reads the same way
 * (SPEC §8): nil, booleans, integers up to 32 bits, floats, UTF-8 strings, bin, arrays,
 * maps whose keys are strings or numbers, `undefined` (fixext 1 of type 0),
 * nested at most MAX_EXT_DEPTH deep, no trailing bytes.
 *
 * Why: nodes decode with msgpackr, the browser and mobile bundles with
 * their own decoder (sdk mini-msgpack), and they differed on hostile
 * input. msgpackr reads timestamps, records and its other extension types
 * and turns ill-formed UTF-8 into U+FFFD; the bundles refuse those. A node
 * accepted and forwarded such a block (in an unknown key, or as a header
 * value), so a Node subscriber got the event and every browser or mobile
 * subscriber lost it. One rule, checked on the bytes before either decoder
 * runs, makes every ingress (client, HTTP, peer, store read-back) and every
 * client refuse the same blocks. One pass over the bytes, no allocation,
 * iterative (depth costs no stack).
 */
export function assertPlainMsgpack(b: Uint8Array, maxContainers = MAX_EXT_CONTAINERS): void {
  const end = b.length;
  let pos = 0;
  let containers = 0;
  // Open containers (depth d): values still to read, and for a map how many were read (keys at even counts).
  const left = LEFT;
  const keyAt = KEY_AT;
  let d = 0;
  left[0] = 1;
  keyAt[0] = -1;
  while (d >= 0) {
    if (left[d] === 0) {
      d--;
      continue;
    }
    left[d]--;
    // In a map, every other value is a key: strings or numbers, as the bundles' decoder requires.
    const isKey = keyAt[d]! >= 0 && keyAt[d]!++ % 2 === 0;
    if (pos >= end) return fail('unexpected end of the msgpack block');
    const t = b[pos++]!;
    if (isKey && !(t < 0x80 || (t >= 0xa0 && t < 0xc0) || t >= 0xe0 || (t >= 0xca && t <= 0xd3) || (t >= 0xd9 && t <= 0xdb))) fail('map keys must be strings or numbers');
    let n: number;
    if (t < 0x80 || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) continue;
    if (t < 0xa0) {
      // fixmap, fixarray
      n = t & 15;
    } else if (t < 0xc0) {
      pos = utf8At(b, pos, t & 31);
      continue;
    } else if (t >= 0xc4 && t <= 0xc6) {
      const w = 1 << (t - 0xc4);
      pos = skip(b, pos + w, lengthAt(b, pos, w));
      continue;
    } else if (t === 0xcf || t === 0xd3) {
      // uint64/int64: msgpackr reads them as bigint, the bundles as a number when safe. No meshbus encoder
      // writes them for a number (msgpackr and the bundles write integers past 32 bits as float64), only
      // for a bigint, which no extension field holds.
      return fail(`64-bit integer at byte ${pos - 1} (decoders disagree on it: write it as a float64)`);
    } else if (t >= 0xca && t <= 0xd3) {
      // float32/64, uint8..32, int8..32
      pos = skip(b, pos, t === 0xca ? 4 : t === 0xcb ? 8 : 1 << ((t - 0xcc) & 3));
      continue;
    } else if (t === 0xd4) {
      // `undefined` as msgpackr and the bundles write it; any other extension type is refused.
      if (pos + 2 > end) fail('unexpected end of the msgpack block');
      if (b[pos] !== 0) fail(`msgpack extension type ${b[pos]} at byte ${pos - 1}`);
      pos += 2;
      continue;
    } else if (t >= 0xd9 && t <= 0xdb) {
      const w = 1 << (t - 0xd9);
      pos = utf8At(b, pos + w, lengthAt(b, pos, w));
      continue;
    } else if (t >= 0xdc && t <= 0xdf) {
      const w = 2 << (t & 1);
      n = lengthAt(b, pos, w);
      pos += w;
    } else {
      return fail(t === 0xc1 ? 'byte 0xc1 is never used in msgpack' : `msgpack extension types are not allowed (byte 0x${t.toString(16)} at ${pos - 1})`);
    }
    // A container: fixmap 0x80-0x8f, map16/32 0xde/0xdf are maps; the rest arrays.
    const map = t < 0x90 || t >= 0xde;
    if (++d > MAX_EXT_DEPTH) fail(`nested deeper than ${MAX_EXT_DEPTH}`);
    if (++containers > maxContainers) fail(`more than ${maxContainers} maps and arrays`);
    left[d] = map ? 2 * n : n;
    keyAt[d] = map ? 0 : -1;
  }
  if (pos !== end) fail(`${end - pos} trailing bytes after the msgpack value`);
}

/**
 * Throws ProtocolError MB_ERR_BAD_BODY unless `b` is a control body of the
 * plain subset (assertPlainMsgpack's rule) holding at most `maxContainers`
 * maps and arrays: run by a node on what a client sends (HELLO, AUTH, SUB,
 * UNSUB) before msgpackr decodes it. A 1 MB SUB body of 1,000,000 empty
 * maps in an array kept a node's event loop ~320 ms.
 */
export function assertPlainBody(b: Uint8Array, maxContainers: number): void {
  if (b.length > 0) assertPlainAs(b, maxContainers, 'MB_ERR_BAD_BODY');
}

/** assertPlainMsgpack failing with `code`. */
function assertPlainAs(b: Uint8Array, maxContainers: number, code: 'MB_ERR_BAD_EXTENSION' | 'MB_ERR_BAD_BODY'): void {
  failCode = code;
  try {
    assertPlainMsgpack(b, maxContainers);
  } finally {
    failCode = 'MB_ERR_BAD_EXTENSION';
  }
}

/**
 * The value of the msgpack bytes `b`, which hold at most `maxContainers`
 * maps and arrays and are of the plain subset: the one decode of a block or
 * body another process wrote (extension blocks, a node's or a peer's control
 * bodies). ProtocolError `code` otherwise. Nodes check the bytes
 * (assertPlainMsgpack) before msgpackr builds anything; the browser and
 * mobile bundles count in their decoder's one pass instead
 * (msgpack-subset-bundle.ts).
 */
export function decodePlain(b: Uint8Array, maxContainers: number, code: 'MB_ERR_BAD_EXTENSION' | 'MB_ERR_BAD_BODY'): unknown {
  assertPlainAs(b, maxContainers, code);
  try {
    return unpack(b) as unknown;
  } catch (e) {
    throw new ProtocolError(code, 'not msgpack', { cause: e });
  }
}

/** Scratch stacks of assertPlainMsgpack (synchronous, never re-entered). */
const LEFT = new Float64Array(MAX_EXT_DEPTH + 1);
const KEY_AT = new Float64Array(MAX_EXT_DEPTH + 1);

/** The big-endian length of `w` bytes at `pos`. */
function lengthAt(b: Uint8Array, pos: number, w: number): number {
  if (pos + w > b.length) fail('unexpected end of the msgpack block');
  let n = 0;
  for (let i = 0; i < w; i++) n = n * 256 + b[pos + i]!;
  return n;
}

/** `pos + n`, when that many bytes are there. */
function skip(b: Uint8Array, pos: number, n: number): number {
  if (pos + n > b.length) fail('unexpected end of the msgpack block');
  return pos + n;
}

/** Checks the `n` bytes at `pos` are well-formed UTF-8 (RFC 3629: no overlongs, surrogates or code points past U+10FFFF); returns the position after them. */
function utf8At(b: Uint8Array, pos: number, n: number): number {
  const e = skip(b, pos, n);
  let i = pos;
  while (i < e) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return fail(`string byte 0x${c.toString(16)} at ${i} is not well-formed UTF-8`);
    if (i + need >= e) return fail(`string at byte ${i} ends inside a UTF-8 sequence`);
    const c1 = b[i + 1]!;
    if (c1 < lo || c1 > hi) return fail(`string at byte ${i} is not well-formed UTF-8`);
    for (let k = 2; k <= need; k++) {
      const ck = b[i + k]!;
      if (ck < 0x80 || ck > 0xbf) return fail(`string at byte ${i} is not well-formed UTF-8`);
    }
    i += need + 1;
  }
  return e;
}

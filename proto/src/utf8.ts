/**
 * UTF-8 conversion without depending on TextEncoder/TextDecoder: Hermes (React
 * Native) shipped without them. ASCII, the common case for topics, takes a
 * tight loop; the platform codec is used for longer non-ASCII text when present.
 *
 * Strings round-trip exactly or not at all: encoding refuses a lone surrogate
 * (ill-formed UTF-16 has no UTF-8 form; replacing it by U+FFFD would alter the
 * string in transit) and decoding keeps a leading U+FEFF (a BOM is content
 * here, not a marker to strip) and refuses invalid UTF-8.
 */
import { assertWellFormed, loneSurrogate } from './well-formed.js';

export { assertWellFormed, loneSurrogateAt } from './well-formed.js';

interface TextCodecs {
  TextEncoder?: new () => { encode(s: string): Uint8Array };
  TextDecoder?: new (label?: string, opts?: { fatal?: boolean; ignoreBOM?: boolean }) => { decode(b: Uint8Array): string };
}
const g = globalThis as unknown as TextCodecs;
const encoder = g.TextEncoder ? new g.TextEncoder() : undefined;
// ignoreBOM: true means "do not strip it": the U+FEFF stays in the string.
const decoder = g.TextDecoder ? new g.TextDecoder('utf-8', { fatal: true, ignoreBOM: true }) : undefined;

/** Byte length of `s` encoded as UTF-8 (a lone surrogate counts 3 bytes; utf8Write refuses it). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * Writes `s` as UTF-8 at `buf[off]`; returns the number of bytes written.
 * Throws ClientError MB_ERR_INVALID_ARGUMENT on a lone surrogate.
 */
export function utf8Write(s: string, buf: Uint8Array, off: number): number {
  const start = off;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[off++] = c;
      continue;
    }
    if (c < 0x800) {
      buf[off++] = 0xc0 | (c >> 6);
      buf[off++] = 0x80 | (c & 0x3f);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && (d & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[off++] = 0xf0 | (c >> 18);
        buf[off++] = 0x80 | ((c >> 12) & 0x3f);
        buf[off++] = 0x80 | ((c >> 6) & 0x3f);
        buf[off++] = 0x80 | (c & 0x3f);
        continue;
      }
      throw loneSurrogate(s, i, 'string');
    }
    buf[off++] = 0xe0 | (c >> 12);
    buf[off++] = 0x80 | ((c >> 6) & 0x3f);
    buf[off++] = 0x80 | (c & 0x3f);
  }
  return off - start;
}

/** UTF-8 bytes of `s` in a new array; ClientError MB_ERR_INVALID_ARGUMENT on a lone surrogate. */
export function utf8Encode(s: string): Uint8Array {
  if (encoder && s.length > 64) {
    // TextEncoder would write U+FFFD for a lone surrogate: check first.
    assertWellFormed(s);
    return encoder.encode(s);
  }
  const out = new Uint8Array(utf8Length(s));
  utf8Write(s, out, 0);
  return out;
}

/**
 * Decodes `buf[start, end)`, keeping a leading BOM (U+FEFF). Returns
 * undefined when the bytes are not valid UTF-8, so callers can raise their
 * own typed error.
 */
export function utf8Decode(buf: Uint8Array, start = 0, end = buf.length): string | undefined {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (buf[i]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    // Char by char only up to 12: from 13 characters V8 builds a concatenation as a rope (ConsString), one
    // object per character, flattened again when the string is hashed or compared. Measured (Node 20, the
    // string then used as a Map key): 8 B 144 vs 242 ns with TextDecoder, 12 B 195 vs 289, 16 B 590 vs 438,
    // 48 B 1,975 vs 492; a node decoding 50-byte reply topics allocated ~1.5 KB each (bench/README.md).
    if (end - start <= 12) {
      let s = '';
      for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
      return s;
    }
    return decoder ? decoder.decode(buf.subarray(start, end)) : decodeSlow(buf, start, end);
  }
  if (decoder) {
    try {
      return decoder.decode(buf.subarray(start, end));
    } catch {
      return undefined;
    }
  }
  return decodeSlow(buf, start, end);
}

/**
 * Code units made into a string at once (String.fromCharCode takes them as
 * arguments, which engines cap). One string per unit, concatenated, made
 * a rope of a node per character: a 3.5 MB string in a hostile node's
 * WELCOME took the mobile bundle (no TextDecoder) 1.0-1.7 s to decode.
 */
const CHUNK = 4096;

function decodeSlow(buf: Uint8Array, start: number, end: number): string | undefined {
  const parts: string[] = [];
  const units: number[] = [];
  let i = start;
  while (i < end) {
    if (units.length >= CHUNK) {
      parts.push(String.fromCharCode.apply(null, units));
      units.length = 0;
    }
    const b = buf[i++]!;
    let cp: number;
    let need: number;
    if (b < 0x80) {
      units.push(b);
      continue;
    } else if (b >= 0xc2 && b < 0xe0) {
      cp = b & 0x1f;
      need = 1;
    } else if (b >= 0xe0 && b < 0xf0) {
      cp = b & 0x0f;
      need = 2;
    } else if (b >= 0xf0 && b < 0xf5) {
      cp = b & 0x07;
      need = 3;
    } else return undefined;
    if (i + need > end) return undefined;
    for (let k = 0; k < need; k++) {
      const c = buf[i++]!;
      if ((c & 0xc0) !== 0x80) return undefined;
      cp = (cp << 6) | (c & 0x3f);
    }
    if ((need === 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (need === 3 && (cp < 0x10000 || cp > 0x10ffff))) {
      return undefined;
    }
    if (cp < 0x10000) units.push(cp);
    else units.push(0xd800 + ((cp - 0x10000) >> 10), 0xdc00 + ((cp - 0x10000) & 0x3ff));
  }
  parts.push(String.fromCharCode.apply(null, units));
  return parts.join('');
}

/**
 * UTF-8 through the platform's TextEncoder/TextDecoder: the same functions as
 * utf8.ts (same results, same errors; test/primitives.test.ts runs one suite
 * over both), in a fraction of the code. The SDK's browser bundles use it in
 * place of utf8.ts (their build swaps the module; every browser they target
 * has both codecs); Node and the mobile bundle (Hermes may lack them) keep
 * utf8.ts.
 */
import { assertWellFormed } from './well-formed.js';

export { assertWellFormed, loneSurrogateAt } from './well-formed.js';

/** The two platform codecs (proto's lib settings do not declare the DOM's). */
interface TextCodecs {
  TextEncoder: new () => { encode(s: string): Uint8Array; encodeInto(s: string, into: Uint8Array): { written: number } };
  TextDecoder: new (label: string, opts: { fatal: boolean; ignoreBOM: boolean }) => { decode(b: Uint8Array): string };
}
const g = globalThis as unknown as TextCodecs;
const encoder = new g.TextEncoder();
// fatal: invalid UTF-8 throws (→ undefined); ignoreBOM: a leading U+FEFF stays in the string.
const decoder = new g.TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Byte length of `s` encoded as UTF-8 (a lone surrogate counts 3 bytes; utf8Write refuses it). */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // One byte per unit, plus: 1 below 0x800, 0 for the low half of a pair (the high one counted 3), else 2.
    if (c > 0x7f) n += c < 0x800 ? 1 : (c & 0xfc00) === 0xdc00 && (s.charCodeAt(i - 1) & 0xfc00) === 0xd800 ? 0 : 2;
  }
  return n;
}

/**
 * Writes `s` as UTF-8 at `buf[off]`; returns the number of bytes written.
 * Throws ClientError MB_ERR_INVALID_ARGUMENT on a lone surrogate.
 */
export function utf8Write(s: string, buf: Uint8Array, off: number): number {
  assertWellFormed(s);
  return encoder.encodeInto(s, buf.subarray(off)).written;
}

/** UTF-8 bytes of `s` in a new array; ClientError MB_ERR_INVALID_ARGUMENT on a lone surrogate. */
export function utf8Encode(s: string): Uint8Array {
  // TextEncoder would write U+FFFD for a lone surrogate: check first.
  assertWellFormed(s);
  return encoder.encode(s);
}

/**
 * Decodes `buf[start, end)`, keeping a leading BOM (U+FEFF). Returns
 * undefined when the bytes are not valid UTF-8, so callers can raise their
 * own typed error.
 */
export function utf8Decode(buf: Uint8Array, start = 0, end = buf.length): string | undefined {
  try {
    return decoder.decode(buf.subarray(start, end));
  } catch {
    return undefined;
  }
}

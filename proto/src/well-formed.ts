/**
 * Lone surrogates: UTF-16 units with no UTF-8 form. Shared by both UTF-8
 * modules (utf8.ts, and utf8-platform.ts in the SDK's browser bundles).
 */
import { ClientError } from './errors.js';

interface WellFormed {
  isWellFormed(): boolean;
}
const hasIsWellFormed = typeof (String.prototype as unknown as Partial<WellFormed>).isWellFormed === 'function';

/**
 * Index of the first lone surrogate in `s` (a UTF-16 unit with no UTF-8
 * form), or -1 when `s` is well-formed.
 */
export function loneSurrogateAt(s: string): number {
  // The engine's check (ES2024) is much faster on long strings; Hermes may lack it.
  if (s.length > 32 && hasIsWellFormed && (s as unknown as WellFormed).isWellFormed()) return -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      i++;
      continue;
    }
    return i;
  }
  return -1;
}

/**
 * Throws ClientError MB_ERR_INVALID_ARGUMENT when `s` holds a lone surrogate;
 * `what` names the string in the message (e.g. 'header "x"').
 */
export function assertWellFormed(s: string, what = 'string'): void {
  const i = loneSurrogateAt(s);
  if (i >= 0) throw loneSurrogate(s, i, what);
}

/** The error for the lone surrogate at `s[i]`; `what` names the string. */
export function loneSurrogate(s: string, i: number, what: string): ClientError {
  const unit = s.charCodeAt(i).toString(16).toUpperCase();
  return new ClientError('MB_ERR_INVALID_ARGUMENT', `${what} has a lone surrogate U+${unit} at index ${i}: it has no UTF-8 form (a string cut inside a surrogate pair?)`);
}

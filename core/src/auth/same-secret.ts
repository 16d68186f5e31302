import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * Whether `got` equals the secret `want`, in time that depends on neither
 * (both are hashed to 32 bytes first, so not even the length leaks).
 * Undefined or non-string input is never equal.
 */
export function sameSecret(got: unknown, want: string): boolean {
  return typeof got === 'string' && timingSafeEqual(digest(got), digest(want));
}

import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * Compares a presented static token with the configured one in time that
 * depends on neither's content or length: both are hashed to 32 bytes first,
 * then compared with timingSafeEqual. A missing token never matches.
 */
export function sameStaticToken(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

import { SessionError } from '@meshbus/proto';
import type { TokenClaims } from './jwt.js';

/**
 * When a session's token stops being valid, ms since the epoch, or undefined
 * for never. Without `maxLifetime` (0) that is the token's `exp`. With it
 * (seconds), the earliest of `exp`, `iat` + maxLifetime and now + maxLifetime
 * (a connection re-authenticates at least that often); a token with neither
 * `exp` nor `iat` is refused (MB_ERR_AUTH_FAILED), one past its lifetime is
 * MB_ERR_TOKEN_EXPIRED.
 */
export function tokenExpiry(claims: TokenClaims, maxLifetime: number, now: number): number | undefined {
  const exp = claims.exp !== undefined ? claims.exp * 1000 : Infinity;
  if (maxLifetime <= 0) return claims.exp !== undefined ? exp : undefined;
  if (claims.exp === undefined && claims.iat === undefined) {
    throw new SessionError('MB_ERR_AUTH_FAILED', `token has neither exp nor iat; this node limits tokens to ${maxLifetime} s`);
  }
  const life = maxLifetime * 1000;
  const end = Math.min(exp, claims.iat !== undefined ? claims.iat * 1000 + life : Infinity, now + life);
  if (end <= now) throw new SessionError('MB_ERR_TOKEN_EXPIRED', `token of ${claims.sub} is older than maxTokenLifetime (${maxLifetime} s)`);
  return end;
}


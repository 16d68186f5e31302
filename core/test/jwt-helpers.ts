import { signHs256, type TokenClaims } from '../src/index.js';

/** The HS256 secret of the JWT test nodes (`jwt: { hs256Secret: SECRET }`). */
export const SECRET = 'test-secret-for-hs256-tokens';

/** Seconds since the epoch, `s` seconds from now (for `exp`, `iat`, `nbf`). */
export const inSeconds = (s: number): number => Math.floor(Date.now() / 1000) + s;

/** A token signed with SECRET. */
export function token(claims: TokenClaims | Record<string, unknown>): string {
  return signHs256(claims, SECRET);
}

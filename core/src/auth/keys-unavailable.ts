import { SessionError } from '@meshbus/proto';

/**
 * Longest a JWKS (URL or file) may take to give a token's key, ms: jose's
 * fetch timeout and the bound on the whole lookup (a file on a hung mount
 * never answers). It also bounds how long a connection's expiry waits for
 * an AUTH being verified (session-token.ts).
 */
export const KEY_LOOKUP_TIMEOUT_MS = 5000;

/**
 * The node could not check a token because its own key source failed (JWKS
 * unreachable, answering an error or garbage, a file that cannot be read, a
 * lookup past KEY_LOOKUP_TIMEOUT_MS, an unknown `kid` it may not fetch the
 * JWKS again for yet). MB_ERR_NOT_READY rather than MB_ERR_AUTH_FAILED: the
 * token was not found wrong, so the caller is not charged a failed
 * authentication (auth-throttle.ts), and clients retry (the SDK gives up
 * for good on MB_ERR_AUTH_FAILED, as SPEC 10.1 tells them to).
 */
export function keysUnavailable(detail: string, cause?: unknown): SessionError {
  return new SessionError('MB_ERR_NOT_READY', `token not checked, the node's signing keys are unavailable (${detail}); retry later`, { cause });
}

import { SessionError } from '@meshbus/proto';
import { Permissions } from './auth/permissions.js';
import { tokenExpiry } from './auth/token-lifetime.js';
import type { JwtVerifier } from './auth/jwt.js';
// setTimeout overflows past it: far-off expiries are re-armed in steps.
import { MAX_TIMER_MS } from './config-error.js';


/**
 * What a client connection holds of its JWT: the subject, the permissions,
 * and the timer that calls `expired` when the token's lifetime ends (capped
 * by the node's maxTokenLifetime).
 */
export class SessionToken {
  subject = '';
  permissions: Permissions | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The connection closed: a verification finishing later arms nothing. */
  private stopped = false;

  constructor(
    private readonly jwt: JwtVerifier,
    private readonly maxLifetime: number,
    private readonly expired: () => void,
  ) {}

  /**
   * Verifies `token` and adopts its subject, permissions and expiry. Rejects
   * with SessionError MB_ERR_AUTH_FAILED (missing or invalid) or
   * MB_ERR_TOKEN_EXPIRED. With `sameSubject` (a refresh on a live
   * connection), a valid token for another subject is not adopted: its
   * subject is returned instead; otherwise undefined. Verification is
   * asynchronous (jose, and JWKS keys may be fetched): the caller orders
   * adoptions and holds what depends on them.
   */
  async adopt(token: string | undefined, sameSubject: boolean): Promise<string | undefined> {
    if (token === undefined) throw new SessionError('MB_ERR_AUTH_FAILED', 'a token is required');
    const claims = await this.jwt.verify(token);
    if (this.stopped) return undefined;
    if (sameSubject && claims.sub !== this.subject) return claims.sub;
    const expiry = tokenExpiry(claims, this.maxLifetime, Date.now());
    this.subject = claims.sub;
    this.permissions = claims.permissions ? new Permissions(claims.permissions) : undefined;
    this.stop();
    if (expiry !== undefined) this.arm(expiry);
    return undefined;
  }

  private arm(expiry: number): void {
    const left = expiry - Date.now();
    this.timer = setTimeout(left > MAX_TIMER_MS ? () => this.arm(expiry) : this.expired, Math.min(Math.max(left, 0), MAX_TIMER_MS));
    this.timer.unref?.();
  }

  /** The connection closed: no expiry callback now or after a verification in flight. */
  close(): void {
    this.stopped = true;
    this.stop();
  }

  /** No more expiry callback (a new token replaces this one). */
  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

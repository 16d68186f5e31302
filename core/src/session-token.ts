import { SessionError } from '@meshbus/proto';
import { Permissions } from './auth/permissions.js';
import { tokenExpiry } from './auth/token-lifetime.js';
import { KEY_LOOKUP_TIMEOUT_MS } from './auth/keys-unavailable.js';
import type { JwtVerifier } from './auth/jwt.js';
// setTimeout overflows past it: far-off expiries are re-armed in steps.
import { MAX_TIMER_MS } from './config-error.js';

/**
 * What a client connection holds of its JWT: the subject, the permissions,
 * and the timer that calls `expired` when the token's lifetime ends (capped
 * by the node's maxTokenLifetime). An AUTH that arrived before that end is
 * being verified: the end waits for its verdict (SPEC 10.1: a connection
 * that sent a fresh token before expiry survives), at most
 * KEY_LOOKUP_TIMEOUT_MS after the AUTH arrived, the bound of the slowest
 * part of a verification (a JWKS lookup), so a hung key source cannot keep
 * an expired connection open.
 */
export class SessionToken {
  subject = '';
  permissions: Permissions | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the token in force stops being valid, ms since the epoch; undefined: never (or no token yet). */
  private ends: number | undefined;
  /** The AUTH being verified that the expiry waits for: when it arrived, and whether the old token ended meanwhile. */
  private awaited: { since: number; lapsed: boolean } | undefined;
  /** The connection closed: a verification finishing later arms nothing. */
  private stopped = false;

  constructor(
    private readonly jwt: JwtVerifier,
    private readonly maxLifetime: number,
    private readonly expired: () => void,
  ) {}

  /**
   * Verifies `token` and adopts its subject, permissions and expiry. Rejects
   * with SessionError MB_ERR_AUTH_FAILED (missing or invalid),
   * MB_ERR_TOKEN_EXPIRED, or MB_ERR_NOT_READY (the node's key source failed).
   * With `refresh` (AUTH on a live connection), a valid token for another
   * subject is not adopted: its subject is returned instead; otherwise
   * undefined. Verification is asynchronous (jose, and JWKS keys may be
   * fetched): the caller orders adoptions, holds what depends on them, and
   * calls `decided()` once it has acted on the verdict.
   */
  async adopt(token: string | undefined, refresh: boolean): Promise<string | undefined> {
    if (refresh) this.awaitVerdict();
    if (token === undefined) throw new SessionError('MB_ERR_AUTH_FAILED', 'a token is required');
    const claims = await this.jwt.verify(token);
    if (this.stopped) return undefined;
    if (refresh && claims.sub !== this.subject) return claims.sub;
    const expiry = tokenExpiry(claims, this.maxLifetime, Date.now());
    this.subject = claims.sub;
    this.permissions = claims.permissions !== undefined ? new Permissions(claims.permissions) : undefined;
    this.awaited = undefined;
    this.stop();
    this.ends = expiry;
    if (expiry !== undefined) this.arm(expiry);
    return undefined;
  }

  /**
   * An AUTH arrived (it may wait before its verification starts): the
   * expiry waits for its verdict, if the token in force has not ended yet.
   */
  awaitVerdict(): void {
    if (this.awaited || this.stopped || (this.ends !== undefined && this.ends <= Date.now())) return;
    this.awaited = { since: Date.now(), lapsed: false };
  }

  /**
   * The verdict on the awaited AUTH was acted on. Not adopted (refused
   * without closing the connection: another subject, the key source
   * unavailable): the old token stays, so if it ended meanwhile the
   * connection ends now. A fatal refusal has already closed it with its own
   * code (and `expired` does nothing on a closed connection).
   */
  decided(): void {
    const a = this.awaited;
    this.awaited = undefined;
    if (a?.lapsed && !this.stopped) this.expired();
  }

  private arm(expiry: number): void {
    const left = expiry - Date.now();
    this.timer = setTimeout(left > MAX_TIMER_MS ? () => this.arm(expiry) : () => this.ended(), Math.min(Math.max(left, 0), MAX_TIMER_MS));
    this.timer.unref?.();
  }

  /** The token in force ended: the connection ends, unless an AUTH sent before is being verified (then at most until its bound). */
  private ended(): void {
    const a = this.awaited;
    if (a === undefined) return this.expired();
    a.lapsed = true;
    this.timer = setTimeout(() => {
      if (this.awaited !== a) return;
      this.awaited = undefined;
      this.expired();
    }, Math.max(a.since + KEY_LOOKUP_TIMEOUT_MS - Date.now(), 0));
    this.timer.unref?.();
  }

  /** The connection closed: no expiry callback now or after a verification in flight. */
  close(): void {
    this.stopped = true;
    this.awaited = undefined;
    this.stop();
  }

  /** No more expiry callback (a new token replaces this one). */
  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

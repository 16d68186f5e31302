import { SessionError, isMeshbusError, type ErrorCode } from '@meshbus/proto';
import type { Permissions } from './auth/permissions.js';
import { remoteAddress } from './auth/auth-throttle.js';
import { sameSecret } from './auth/same-secret.js';
import { SessionToken } from './session-token.js';
import type { NodeContext } from './node-context.js';

/** What ClientAuth needs of its connection. */
export interface AuthenticatedConnection {
  /** "<address>:<port>" of the client. */
  readonly remote: string;
  /** ERROR `code` and close. */
  fail(code: ErrorCode, message: string): void;
  sendError(code: ErrorCode, correlation: number, message: string): void;
}

/**
 * A client connection's credentials (TCP and WebSocket alike): the static
 * token or the JWT of HELLO, a refreshed JWT in AUTH, and the node's
 * failed-authentication throttle (auth-throttle.ts) in front of both: an
 * address out of failed attempts is refused with MB_ERR_AUTH_THROTTLED
 * before its secret is looked at, and every refused secret (not a merely
 * expired token: a valid signature is no guess) is charged to its address.
 */
export class ClientAuth {
  /** The connection's JWT, when the node verifies them. */
  private readonly token: SessionToken | undefined;

  constructor(
    private readonly ctx: NodeContext,
    private readonly conn: AuthenticatedConnection,
    expired: () => void,
  ) {
    if (ctx.jwt) this.token = new SessionToken(ctx.jwt, ctx.options.maxTokenLifetime, expired);
  }

  /** Token subject ('' when the node does not verify JWTs). */
  get subject(): string {
    return this.token?.subject ?? '';
  }

  get permissions(): Permissions | undefined {
    return this.token?.permissions;
  }

  /** HELLO's `token`: true when the connection may open; else it has been failed (ERROR and close). */
  hello(token: string | undefined): boolean {
    const secret = this.ctx.options.token;
    if (!this.token && secret === undefined) return true;
    const throttled = this.ctx.authThrottle.refusal(remoteAddress(this.conn.remote), 'client');
    if (throttled) {
      this.conn.fail(throttled.code, throttled.message);
      return false;
    }
    if (this.token) return this.adopt(token);
    if (sameSecret(token, secret!)) return true;
    this.failed('MB_ERR_AUTH_FAILED', 'bad or missing token');
    return false;
  }

  /**
   * AUTH on a live connection (JWT nodes only): true when `token` replaced
   * the old one. A valid token for another subject is refused with a
   * non-fatal MB_ERR_SUBJECT_CHANGED on `correlation` (the old token stays);
   * an invalid or expired one fails the connection.
   */
  refresh(token: string | undefined, correlation: number): boolean {
    return this.adopt(token, correlation);
  }

  /** Stops the expiry timer (the connection is closing). */
  stop(): void {
    this.token?.stop();
  }

  /** Verifies a JWT and adopts its subject, permissions and expiry (`correlation`: an AUTH refresh). */
  private adopt(token: string | undefined, correlation?: number): boolean {
    try {
      const other = this.token!.adopt(token, correlation !== undefined);
      if (other === undefined) return true;
      this.ctx.stats.authFailures++;
      this.conn.sendError('MB_ERR_SUBJECT_CHANGED', correlation!, `connection is "${this.subject}", token is for "${other}"`);
      return false;
    } catch (e) {
      const err = isMeshbusError(e) ? e : new SessionError('MB_ERR_AUTH_FAILED', String(e));
      this.failed(err.code, err.message);
      return false;
    }
  }

  private failed(code: ErrorCode, message: string): void {
    this.ctx.stats.authFailures++;
    if (code !== 'MB_ERR_TOKEN_EXPIRED') this.ctx.authThrottle.failed(remoteAddress(this.conn.remote), 'client');
    this.conn.fail(code, message);
  }
}

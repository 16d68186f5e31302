import { SessionError, isMeshbusError, type ErrorCode, thrownText } from '@meshbus/proto';
import type { Permissions } from './auth/permissions.js';
import { remoteAddress } from './auth/auth-throttle.js';
import { sameSecret } from './auth/same-secret.js';
import { SessionToken } from './session-token.js';
import type { NodeContext } from './node-context.js';
import { throttled } from './told-recently.js';

/** What ClientAuth needs of its connection. */
export interface AuthenticatedConnection {
  /** "<address>:<port>" of the client. */
  readonly remote: string;
  /** True once the connection is closing or closed: a late verdict is dropped. */
  readonly gone: boolean;
  /** ERROR `code` and close. */
  fail(code: ErrorCode, message: string): void;
  sendError(code: ErrorCode, correlation: number, message: string): void;
  /** Holds the frames that arrive while a token is verified; release() handles them, in order, under the verdict. */
  hold(): void;
  release(): void;
  /** A throw from `accepted` (a bug): reported like any handler error, on `correlation`. */
  handlerError(e: unknown, correlation: number): void;
  /** Its JWT lapsed (MB_ERR_TOKEN_EXPIRED). */
  tokenExpired(): void;
}

/**
 * A client connection's credentials (TCP and WebSocket alike): the static
 * token or the JWT of HELLO, a refreshed JWT in AUTH, and the node's
 * failed-authentication throttle (auth-throttle.ts) in front of both: an
 * address out of failed attempts is refused with MB_ERR_AUTH_THROTTLED
 * before its secret is looked at, and every refused secret is charged to
 * its address. Not charged: a merely expired token (a valid signature is no
 * guess), and a token left unchecked because the node's own key source
 * failed (MB_ERR_NOT_READY, keys-unavailable.ts): charged, a JWKS outage
 * throttled every client of an address, on past the outage's end.
 */
export class ClientAuth {
  /** The connection's JWT, when the node verifies them. */
  private readonly token: SessionToken | undefined;

  constructor(
    private readonly ctx: NodeContext,
    private readonly conn: AuthenticatedConnection,
  ) {
    // The callback is made only where tokens expire: a closure per connection is ~100 B (issue #15).
    if (ctx.jwt) this.token = new SessionToken(ctx.jwt, ctx.options.maxTokenLifetime, () => conn.tokenExpired());
  }

  /** Token subject ('' when the node does not verify JWTs). */
  get subject(): string {
    return this.token?.subject ?? '';
  }

  get permissions(): Permissions | undefined {
    return this.token?.permissions;
  }

  /**
   * HELLO's `token`: calls `accepted` when the connection may open, at once
   * (no credentials, a static token) or once its JWT is verified (jose,
   * maybe a JWKS fetch: frames meanwhile are held); else fails the
   * connection (ERROR and close).
   */
  hello(token: string | undefined, accepted: () => void): void {
    const secret = this.ctx.options.token;
    if (!this.token && secret === undefined) return accepted();
    const throttled = this.ctx.authThrottle.refusal(remoteAddress(this.conn.remote), 'client');
    if (throttled) return this.conn.fail(throttled.code, throttled.message);
    if (this.token) return this.adopt(token, undefined, accepted);
    if (sameSecret(token, secret!)) return accepted();
    this.failed('MB_ERR_AUTH_FAILED', 'bad or missing token');
  }

  /**
   * An AUTH arrived (JWT nodes only), to be verified now or once its wait
   * (refresh-walks.ts) is over: the old token's expiry waits for the
   * verdict (SessionToken.awaitVerdict).
   */
  refreshArrived(): void {
    this.token?.awaitVerdict();
  }

  /**
   * AUTH on a live connection (JWT nodes only): calls `accepted` once
   * `token` replaced the old one. A valid token for another subject is
   * refused with a non-fatal MB_ERR_SUBJECT_CHANGED on `correlation`, and a
   * token left unchecked by a key source outage with a non-fatal
   * MB_ERR_NOT_READY (the old token stays, until its own expiry); an invalid
   * or expired one fails the connection.
   */
  refresh(token: string | undefined, correlation: number, accepted: () => void): void {
    this.adopt(token, correlation, accepted);
  }

  /** Stops the expiry timer (the connection is closing). */
  stop(): void {
    this.token?.close();
  }

  /** Verifies a JWT and adopts its subject, permissions and expiry (`correlation`: an AUTH refresh), holding frames meanwhile. */
  private adopt(token: string | undefined, correlation: number | undefined, accepted: () => void): void {
    this.conn.hold();
    const done = (other: string | undefined): void => {
      if (this.conn.gone) return;
      if (other === undefined) return accepted();
      this.ctx.stats.authFailures++;
      this.conn.sendError('MB_ERR_SUBJECT_CHANGED', correlation!, `connection is "${this.subject}", token is for "${other}"`);
    };
    const refused = (e: unknown): void => {
      if (this.conn.gone) return;
      const err = isMeshbusError(e) ? e : new SessionError('MB_ERR_AUTH_FAILED', thrownText(e));
      if (err.code !== 'MB_ERR_NOT_READY') return this.failed(err.code, err.message);
      throttled(this.ctx.logger).warn({ remote: this.conn.remote, err: err.message }, 'client token not checked: signing keys unavailable', 'signing keys unavailable');
      // The old token is still in force on a live connection: it ends at its own expiry, not at the key source's outage.
      if (correlation !== undefined) this.conn.sendError(err.code, correlation, err.message);
      else this.conn.fail(err.code, err.message);
    };
    void this.token!.adopt(token, correlation !== undefined)
      .then(done, refused)
      .catch((e: unknown) => this.conn.handlerError(e, correlation ?? 0))
      .finally(() => {
        this.token!.decided();
        this.conn.release();
      });
  }

  private failed(code: ErrorCode, message: string): void {
    this.ctx.stats.authFailures++;
    if (code !== 'MB_ERR_TOKEN_EXPIRED') this.ctx.authThrottle.failed(remoteAddress(this.conn.remote), 'client');
    this.conn.fail(code, message);
  }
}

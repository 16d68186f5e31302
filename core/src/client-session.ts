import {
  ERROR_CODES,
  FIXED_SIZE,
  FrameDecoder,
  FrameType,
  MAX_VERSION,
  MIN_VERSION,
  OFF,
  ProtocolError,
  assertPattern,
  copyBytes,
  decodeBody,
  decodeHello,
  SessionError,
  decodeSub,
  decodeUnsub,
  encodeBody,
  encodeFrame,
  isMeshbusError,
  resealHeader,
  writeU32,
  type ErrorCode,
  type Frame,
  type MeshbusError,
  type WelcomeBody,
} from '@meshbus/proto';
import { OutboundQueue } from './outbound-queue.js';
import { refuseWithoutRedis } from './durable/durability-off.js';
import type { SlowPolicy, Subscription } from './subscriber.js';
import { FlowEndpoint } from './flow-endpoint.js';
import { Permissions } from './auth/permissions.js';
import { ReservedFilter, isOwnInbox, isTracePattern, reservedSubscribeProblem, startsWithWildcard } from './auth/reserved-topics.js';
import { checkBodyKeys, checkEvent, checkHello, checkSettle, checkSub, checkToken } from './client-limits.js';
import { RateLimiter } from './auth/rate-limiter.js';
import { sameSecret } from './auth/same-secret.js';
import { tokenExpiry } from './auth/token-lifetime.js';
import type { Wire } from './wire.js';
import type { NodeContext } from './node-context.js';

type State = 'hello' | 'open' | 'closing' | 'closed';

let nextUid = 1;

/** Bytes a first WebSocket message may hold beyond maxHelloSize: frames a client batches with its HELLO. */
const PRE_AUTH_MESSAGE_SLACK = 64 * 1024;

/**
 * One client connection's protocol state: handshake, subscriptions,
 * liveness and its outbound queue. Transport-agnostic: TCP and WebSocket
 * connections are both a ClientSession over a Wire.
 */
export class ClientSession extends FlowEndpoint {
  readonly kind = 'client' as const;
  readonly uid = nextUid++;
  readonly connectedAt = Date.now();
  /** Client id announced in WELCOME (16 hex digits). */
  readonly clientId: string;
  name = '';
  lang = '';
  echo = true;
  private state: State = 'hello';
  private readonly subs = new Map<number, Subscription>();
  /** How many of `subs` have a `max` (0: deliveries are not looked up). */
  private limited = 0;
  private readonly decoder: FrameDecoder;
  protected readonly out: OutboundQueue;
  private handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  private lastRx = Date.now();
  private pingsOut = 0;
  private pingSeq = 0;
  /** Token subject, when the node verifies JWTs. */
  subject = '';
  private permissions: Permissions | undefined;
  /** Set while some subscription starts with a wildcard: drops other inboxes' and unknown traces' events. */
  private reserved: ReservedFilter | undefined;
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly limiter: RateLimiter | undefined;
  private lastLimitError = 0;
  msgsIn = 0;
  msgsOut = 0;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    readonly wire: Wire,
    private readonly ctx: NodeContext,
  ) {
    super();
    this.clientId = ctx.newClientId();
    // Until HELLO is accepted only a small frame is read: nothing larger is buffered or decoded for an unknown peer.
    this.decoder = new FrameDecoder({ maxFrameLength: Math.min(ctx.options.maxHelloSize, ctx.maxFrameLength), scanner: ctx.scanner });
    const o = ctx.options;
    // A message transport buffers whole messages: bound those too (room for a HELLO and a few small frames batched with it).
    wire.limitInput?.(o.maxHelloSize + PRE_AUTH_MESSAGE_SLACK);
    this.out = new OutboundQueue(wire, Math.min(1024 * 1024, o.maxPending >>> 1), o.maxPending, 'disconnect', () => this.slowConsumer());
    if (o.publishRate > 0) this.limiter = new RateLimiter(o.publishRate, o.publishBurst);
    this.handshakeTimer = setTimeout(() => {
      if (this.state === 'hello') this.fail('MB_ERR_HANDSHAKE_TIMEOUT', `${o.handshakeTimeout} ms`);
    }, o.handshakeTimeout);
  }

  get label(): string {
    return `client ${this.clientId}`;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  protected pauseInput(): void {
    this.ctx.stats.flowPauses++;
    this.wire.pause();
  }

  /** A connection whose subscriptions all chose 'drop' sheds load itself and never pauses a publisher. */
  protected override holdsSources(): boolean {
    return this.out.policy !== 'drop';
  }

  protected resumeInput(): void {
    if (this.state !== 'closed') this.wire.resume();
  }

  subscriptions(): IterableIterator<Subscription> {
    return this.subs.values();
  }

  // ---- input ----

  /** Bytes from the wire. */
  onData(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    this.lastRx = Date.now();
    this.pingsOut = 0;
    this.bytesIn += chunk.length;
    this.decoder.push(chunk, this.onFrame, this.onDecodeError);
  }

  private readonly onDecodeError = (e: ProtocolError): void => {
    this.ctx.stats.protocolErrors++;
    if (this.state === 'hello' && e.code === 'MB_ERR_FRAME_TOO_LARGE') {
      this.fail(e.code, `before the handshake (maxHelloSize): ${e.message}`);
      return;
    }
    if (e.fatal) this.fail(e.code, e.message);
    else this.sendError(e.code, 0, e.message);
  };

  private readonly onFrame = (f: Frame): void => {
    if (this.state !== 'open') {
      if (this.state === 'hello') this.onHello(f);
      return;
    }
    try {
      switch (f.type) {
        case FrameType.PUB:
        case FrameType.REQ:
          this.msgsIn++;
          if (this.limiter && !this.limiter.take()) {
            this.rateLimited(f.correlation);
            return;
          }
          if (this.permissions && !this.permissions.canPublish(f.topic)) {
            this.ctx.stats.permissionDenied++;
            this.sendError('MB_ERR_PERMISSION_DENIED', f.correlation, `publish to "${f.topic}"`);
            return;
          }
          if (!this.replyAllowed(checkEvent(f, this.ctx.options), f.correlation)) return;
          this.ctx.publish(this, f);
          return;
        case FrameType.AUTH:
          this.onAuth(f);
          return;
        case FrameType.SUB:
          this.onSub(f);
          return;
        case FrameType.UNSUB:
          this.onUnsub(f);
          return;
        case FrameType.ACK:
        case FrameType.NACK:
          // A consumer settles a durable work-queue delivery (correlation = delivery id).
          checkSettle(f);
          if (this.ctx.durability) this.ctx.durability.clientAck(this, f);
          else this.sendError('MB_ERR_UNEXPECTED_FRAME', f.correlation, f.typeName);
          return;
        case FrameType.PING:
          this.send(encodeFrame({ type: FrameType.PONG, correlation: f.correlation }));
          return;
        case FrameType.PONG:
          return;
        case FrameType.GOODBYE:
          this.close();
          return;
        case FrameType.ERROR:
          this.ctx.logger.debug({ client: this.clientId }, 'client sent ERROR');
          return;
        default:
          this.sendError('MB_ERR_UNEXPECTED_FRAME', f.correlation, f.typeName);
      }
    } catch (e) {
      this.onHandlerError(e, f.correlation);
    }
  };

  /**
   * A reply topic is a publish the responder makes on the requester's
   * behalf: it needs the same permission, except in the requester's own inbox.
   */
  private replyAllowed(reply: string | undefined, correlation: number): boolean {
    if (reply === undefined || !this.permissions || this.permissions.canPublish(reply)) return true;
    if (isOwnInbox(reply, this.clientId)) return true;
    this.ctx.stats.permissionDenied++;
    this.sendError('MB_ERR_PERMISSION_DENIED', correlation, `reply topic "${reply}" (not allowed to publish there)`);
    return false;
  }

  private onHandlerError(e: unknown, correlation: number): void {
    if (isMeshbusError(e)) {
      // Every malformed frame counts, whichever check refused it (session limits, ingress, routing).
      if (ERROR_CODES[e.code].kind === 'protocol') this.ctx.stats.protocolErrors++;
      if (e.fatal) this.fail(e.code, e.message);
      else this.sendError(e.code, correlation, e.message);
      return;
    }
    this.ctx.logger.error({ client: this.clientId, err: String(e) }, 'internal error handling a frame');
    this.sendError('MB_ERR_INTERNAL', correlation, 'internal error');
  }

  private onHello(f: Frame): void {
    if (f.type !== FrameType.HELLO) {
      this.fail('MB_ERR_HANDSHAKE_REQUIRED', `got ${f.typeName} before HELLO`);
      return;
    }
    let hello;
    try {
      hello = decodeHello(f.payload);
      checkHello(hello);
    } catch (e) {
      const err = e as MeshbusError;
      this.fail(err.code === 'MB_ERR_OUT_OF_RANGE' ? err.code : 'MB_ERR_BAD_BODY', err.message);
      return;
    }
    const [lo, hi] = hello.v;
    const v = Math.min(hi, MAX_VERSION);
    if (v < lo || v < MIN_VERSION) {
      this.fail('MB_ERR_UNSUPPORTED_VERSION', `client speaks ${lo}..${hi}, node ${MIN_VERSION}..${MAX_VERSION}`);
      return;
    }
    const o = this.ctx.options;
    if (this.ctx.jwt) {
      if (!this.acceptToken(hello.token)) return;
    } else if (o.token !== undefined && !sameSecret(hello.token, o.token)) {
      this.ctx.stats.authFailures++;
      this.fail('MB_ERR_AUTH_FAILED', 'bad or missing token');
      return;
    }
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
    this.decoder.limit = this.ctx.maxFrameLength;
    this.wire.limitInput?.(undefined);
    this.name = hello.name ?? '';
    this.lang = hello.lang ?? '';
    this.echo = hello.echo ?? true;
    this.state = 'open';
    const welcome: WelcomeBody = {
      v,
      node: this.ctx.id,
      client: this.clientId,
      maxPayload: o.maxPayload,
      maxTopic: o.maxTopicLength,
      ping: o.pingInterval,
      peers: this.ctx.peerUrls(),
    };
    this.send(encodeFrame({ type: FrameType.WELCOME, correlation: f.correlation, payload: encodeBody(welcome) }));
    this.ctx.opened(this);
  }

  /**
   * Verifies a JWT and adopts its subject, permissions and expiry. On
   * failure: ERROR and close (MB_ERR_AUTH_FAILED or MB_ERR_TOKEN_EXPIRED).
   * With `refresh` (AUTH on a live connection), a valid token for another
   * subject is refused with a non-fatal MB_ERR_SUBJECT_CHANGED on
   * `refresh.correlation` and the connection keeps its old token.
   */
  private acceptToken(token: string | undefined, refresh?: { correlation: number }): boolean {
    try {
      if (token === undefined) throw new SessionError('MB_ERR_AUTH_FAILED', 'a token is required');
      const claims = this.ctx.jwt!.verify(token);
      if (refresh && claims.sub !== this.subject) {
        this.ctx.stats.authFailures++;
        this.sendError('MB_ERR_SUBJECT_CHANGED', refresh.correlation, `connection is "${this.subject}", token is for "${claims.sub}"`);
        return false;
      }
      const expiry = tokenExpiry(claims, this.ctx.options.maxTokenLifetime, Date.now());
      this.subject = claims.sub;
      this.permissions = claims.permissions ? new Permissions(claims.permissions) : undefined;
      clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
      if (expiry !== undefined) {
        // setTimeout overflows past 2^31 ms; re-arm in steps for far-off expiries.
        const arm = (): void => {
          const left = expiry - Date.now();
          this.expiryTimer = setTimeout(left > 0x7fffffff ? arm : () => this.expired(), Math.min(Math.max(left, 0), 0x7fffffff));
          this.expiryTimer.unref?.();
        };
        arm();
      }
      return true;
    } catch (e) {
      const err = isMeshbusError(e) ? e : new SessionError('MB_ERR_AUTH_FAILED', String(e));
      this.ctx.stats.authFailures++;
      this.fail(err.code, err.message);
      return false;
    }
  }

  private expired(): void {
    if (this.state !== 'open') return;
    this.ctx.stats.tokensExpired++;
    this.fail('MB_ERR_TOKEN_EXPIRED', `token of ${this.subject} expired; reconnect with a fresh one or send AUTH before expiry`);
  }

  /**
   * AUTH on a live connection: a refreshed token replaces the old one
   * (answered with ACK). A token for another subject is refused with
   * MB_ERR_SUBJECT_CHANGED and the connection stays on its old token; an
   * invalid or expired one closes it. Once accepted, every live subscription
   * is checked against the new permissions and each one now denied ends
   * with ERROR MB_ERR_PERMISSION_DENIED on its sid.
   */
  private onAuth(f: Frame): void {
    if (!this.ctx.jwt) {
      this.sendError('MB_ERR_UNEXPECTED_FRAME', f.correlation, 'this node does not use tokens');
      return;
    }
    const body = decodeBody(f.payload);
    checkBodyKeys(body, 'AUTH');
    const token = typeof body.token === 'string' ? body.token : undefined;
    checkToken(token);
    if (!this.acceptToken(token, { correlation: f.correlation })) return;
    this.recheckSubscriptions();
    this.send(encodeFrame({ type: FrameType.ACK, correlation: f.correlation }));
  }

  /** Ends the subscriptions the current permissions no longer allow. */
  private recheckSubscriptions(): void {
    const denied: Subscription[] = [];
    for (const s of this.subs.values()) if (this.subscribeProblem(s.pattern) !== undefined) denied.push(s);
    for (const s of denied) {
      this.unsubscribe(s.sid);
      this.ctx.stats.permissionDenied++;
      this.sendError('MB_ERR_PERMISSION_DENIED', s.sid, `subscribe to "${s.pattern}" (not allowed by the refreshed token)`);
    }
  }

  /** Why this connection may not subscribe to `pattern` (reserved prefixes, then token permissions), or undefined. */
  private subscribeProblem(pattern: string): string | undefined {
    const p = this.permissions;
    const reserved = reservedSubscribeProblem(pattern, this.clientId, (x) => p !== undefined && p.explicitlyAllowsSubscribe(x));
    if (reserved !== undefined) return reserved;
    if (!p) return undefined;
    // The own inbox needs no allow rule (request/reply works under any allow list); a deny still applies.
    if (isOwnInbox(pattern, this.clientId) ? p.deniesSubscribe(pattern) : !p.canSubscribe(pattern)) return `subscribe to "${pattern}"`;
    return undefined;
  }

  private rateLimited(correlation: number): void {
    this.ctx.stats.rateLimited++;
    const now = Date.now();
    // One error a second is enough to tell the client; more would amplify the flood.
    if (now - this.lastLimitError < 1000) return;
    this.lastLimitError = now;
    this.sendError('MB_ERR_RATE_LIMITED', correlation, `more than ${this.ctx.options.publishRate} publishes/s`);
  }

  private onSub(f: Frame): void {
    const sid = f.correlation;
    const pattern = f.topic;
    assertPattern(pattern, this.ctx.options);
    const problem = this.subscribeProblem(pattern);
    if (problem !== undefined) {
      this.ctx.stats.permissionDenied++;
      this.sendError('MB_ERR_PERMISSION_DENIED', sid, problem);
      return;
    }
    const body = decodeSub(f.payload);
    checkSub(body);
    if (sid === 0) throw new ProtocolError('MB_ERR_BAD_BODY', 'SUB needs a non-zero sid in correlation');
    const old = this.subs.get(sid);
    if (!old && this.subs.size >= this.ctx.options.maxSubscriptions) {
      this.sendError('MB_ERR_TOO_MANY_SUBSCRIPTIONS', sid, `limit ${this.ctx.options.maxSubscriptions}`);
      return;
    }
    const d = this.ctx.durability;
    if (!d) refuseWithoutRedis(body);
    const sub: Subscription = d?.subscription(this, sid, pattern, body) ?? { sid, pattern, queue: body.q, owner: this, slow: body.slow ?? 'disconnect' };
    if (body.max !== undefined) this.limit(sub, body.max);
    if (old) this.detach(old);
    this.subs.set(sid, sub);
    if (sub.max !== undefined) this.limited++;
    this.ctx.table.add(sub);
    this.updatePolicy();
    // Durable extras once the subscription routes: recovery, queue consumer, latest values.
    d?.subscribed(this, sub, body, () => this.subs.get(sid) === sub);
  }

  /** UNSUB: now, or (body `max`) after that many more deliveries. */
  private onUnsub(f: Frame): void {
    const sid = f.correlation;
    const max = f.payloadLen === 0 ? undefined : decodeUnsub(f.payload).max;
    const sub = this.subs.get(sid);
    if (max === undefined || !sub) {
      this.unsubscribe(sid);
      return;
    }
    const had = sub.max !== undefined;
    this.limit(sub, max);
    if (!had) this.limited++;
    this.ctx.table.limitChanged();
  }

  /** Gives `sub` a limit of `max` deliveries from now (not yet counted in `limited`). */
  private limit(sub: Subscription, max: number): void {
    sub.max = max;
    sub.delivered = 0;
  }

  /** One delivery to `sub` (which has a max); at the max the subscription ends, as if UNSUB'd. */
  countDelivery(sub: Subscription): void {
    if (++sub.delivered! >= sub.max! && this.subs.get(sub.sid) === sub) this.unsubscribe(sub.sid);
  }

  private unsubscribe(sid: number): void {
    const sub = this.subs.get(sid);
    if (!sub) return;
    this.subs.delete(sid);
    this.detach(sub);
    this.updatePolicy();
  }

  /**
   * A connection drops events only when every one of its subscriptions asked
   * for 'drop'. Also (re)builds the reserved-topic delivery filter, needed
   * only while some subscription starts with a wildcard.
   */
  private updatePolicy(): void {
    let policy: SlowPolicy = this.subs.size > 0 ? 'drop' : 'disconnect';
    let wide = false;
    const traces: string[] = [];
    for (const s of this.subs.values()) {
      if (s.slow === 'disconnect') policy = 'disconnect';
      if (startsWithWildcard(s.pattern)) wide = true;
      else if (isTracePattern(s.pattern)) traces.push(s.pattern);
    }
    this.reserved = wide ? new ReservedFilter(this.clientId, traces) : undefined;
    if (this.out.policy === policy) return;
    this.out.policy = policy;
    this.flowPolicyChanged();
  }

  // ---- output ----

  deliver(f: Frame, sid: number): void {
    if (this.state !== 'open') return;
    if (this.permissions?.filtersDelivery && !this.permissions.canReceive(f.topic)) return;
    if (this.reserved && !this.reserved.canReceive(f.topic)) return;
    let ok: boolean;
    const droppedBefore = this.out.dropped;
    if (sid === 0) {
      ok = this.out.send(f.bytes);
    } else {
      // A queue-group delivery names its member: a copy of the header with the sid set.
      const head = copyBytes(f.buf, f.start, f.start + FIXED_SIZE);
      writeU32(head, OFF.SID, sid);
      resealHeader(head, 0);
      ok = this.out.send(head, f.buf.subarray(f.start + FIXED_SIZE, f.end));
    }
    if (ok) {
      this.msgsOut++;
      this.bytesOut += f.size;
    }
    const dropped = this.out.dropped - droppedBefore;
    if (dropped > 0) this.ctx.stats.dropped.slow += dropped;
    if (sid !== 0 && this.limited !== 0) {
      // Queue, durable and resumed deliveries name their subscription: count those with a max.
      const sub = this.subs.get(sid);
      if (sub?.max !== undefined) this.countDelivery(sub);
    }
  }

  /**
   * Sends a control frame (ACK, PONG, WELCOME, SubAck, ERROR…). It counts
   * against maxPending like events; past it the client is a slow consumer.
   */
  send(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    this.out.sendControl(chunk);
  }

  /** A non-fatal ERROR; counts against maxPending like any frame (past it: slow consumer). */
  sendError(code: ErrorCode, correlation: number, message: string): void {
    if (this.state === 'closed') return;
    this.out.sendControl(this.errorFrame(code, correlation, message));
  }

  /** Sends a fatal ERROR as the last frame (bounded, see OutboundQueue.sendFinal), then closes once it is flushed. */
  fail(code: ErrorCode, message: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.ctx.logger.debug({ client: this.clientId, remote: this.wire.remote, code, message }, 'closing connection');
    this.out.sendFinal(this.errorFrame(code, 0, message));
    this.close(code);
  }

  private errorFrame(code: ErrorCode, correlation: number, message: string): Uint8Array {
    this.ctx.stats.errorsSent++;
    // Send the detail only: receivers prefix the code's own text when they build their error.
    const prefix = ERROR_CODES[code].message + ': ';
    const detail = message.startsWith(prefix) ? message.slice(prefix.length) : message;
    return encodeFrame({ type: FrameType.ERROR, correlation, payload: encodeBody({ code: ERROR_CODES[code].num, message: detail }) });
  }

  /** Asks the client to go elsewhere, then closes (graceful shutdown). */
  goodbye(code: ErrorCode, reason: string, reconnect: string[]): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    const body = encodeBody({ code: ERROR_CODES[code].num, reason, reconnect });
    this.out.sendFinal(encodeFrame({ type: FrameType.GOODBYE, payload: body }));
    this.close(code);
  }

  /** More than maxPending bytes queued (or nothing taken for writeDeadline): one final ERROR, then close. */
  private slowConsumer(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.ctx.stats.slowConsumers++;
    this.ctx.logger.warn({ client: this.clientId, remote: this.wire.remote, pending: this.out.pending }, 'slow consumer disconnected');
    this.fail('MB_ERR_SLOW_CONSUMER', `more than ${this.ctx.options.maxPending} bytes pending`);
  }

  /** Stops reading and routing; flushes and ends the wire (`reason`: the fatal error or GOODBYE code, if any). */
  close(reason?: ErrorCode): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'closing';
    this.dropSubscriptions();
    this.wire.end(reason);
    // A peer that never reads would keep the socket half-open; bound the wait.
    setTimeout(() => this.wire.destroy(), this.ctx.options.drainTimeout).unref();
  }

  /** The wire is gone. */
  onClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.handshakeTimer);
    clearTimeout(this.expiryTimer);
    this.dropSubscriptions();
    this.releaseFlow();
    this.ctx.closed(this);
  }

  onDrain(): void {
    this.drained();
  }

  private dropSubscriptions(): void {
    for (const sub of this.subs.values()) this.detach(sub);
    this.subs.clear();
  }

  private detach(sub: Subscription): void {
    if (sub.max !== undefined) this.limited--;
    this.ctx.table.remove(sub);
    this.ctx.durability?.unsubscribed(sub);
  }

  /** Liveness and write-deadline check, called by the node's timer. */
  tick(now: number): void {
    if (this.state !== 'open') return;
    const o = this.ctx.options;
    if (this.checkStall(now, o.maxStall)) this.ctx.stats.flowStalls++;
    if (this.out.stalled(now, o.writeDeadline)) {
      this.slowConsumer();
      return;
    }
    if (now - this.lastRx < o.pingInterval) return;
    if (this.pingsOut >= o.maxPingsOut) {
      this.ctx.stats.staleConnections++;
      this.fail('MB_ERR_STALE_CONNECTION', `${this.pingsOut} pings unanswered`);
      return;
    }
    this.pingsOut++;
    this.lastRx = now;
    this.send(encodeFrame({ type: FrameType.PING, correlation: ++this.pingSeq }));
  }
}

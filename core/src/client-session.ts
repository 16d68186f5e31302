import { ERROR_CODES, FIXED_SIZE, FrameType, ProtocolError, assertPattern, decodeBody, decodeSub, decodeUnsub, encodeFrame, isMeshbusError, thrownText } from '@meshbus/proto';
import type { ErrorCode, Frame, HelloBody, MeshbusError } from '@meshbus/proto';
import { DropReports } from './drop-reports.js';
import { refuseWithoutRedis } from './durable/durability-off.js';
import type { DropTag, Subscription } from './subscriber.js';
import { Connection, forwardedHeader } from './connection.js';
import { settingsOf } from './session-settings.js';
import { subscribeProblem } from './subscription-policy.js';
import { SessionSubscriptions } from './session-subscriptions.js';
import { CheckedRules } from './checked-rules.js';
import { Permissions } from './auth/permissions.js';
import { TRACE, isDeadLetterTopicAt, mayReadDeadLetter, isOwnInbox, isTraceTopic, isTraceTopicAt } from './auth/reserved-topics.js';
import { answerId, checkBodyKeys, checkClientEvent, checkSettle, checkSub, checkToken, controlBody } from './client-limits.js';
import { subscriptionRefusal } from './subscription-bounds.js';
import { RateLimiter } from './auth/rate-limiter.js';
import { ClientAuth } from './client-auth.js';
import { FrameHold } from './frame-hold.js';
import { readHello, welcomeFrame } from './handshake.js';
import type { Transport, TransportEvents } from './transport.js';
import type { NodeContext } from './node-context.js';
import { logTlsMisfit } from './tls-misfit-log.js';
import { remoteAddress } from './auth/auth-throttle.js';
import { errorSite, throttled } from './told-recently.js';

let nextUid = 1;

/** Bytes a first WebSocket message may hold beyond maxHelloSize: frames a client batches with its HELLO. */
const PRE_AUTH_MESSAGE_SLACK = 64 * 1024;

/**
 * One client connection's protocol: handshake, tokens, subscriptions and
 * deliveries. Decoding, liveness, the outbound queue and closing are the
 * shared Connection's. Transport-agnostic: TCP and WebSocket connections are
 * both a ClientSession over a Transport.
 */
export class ClientSession extends Connection {
  readonly kind = 'client' as const;
  readonly uid = nextUid++;
  readonly connectedAt = Date.now();
  /** Client id announced in WELCOME (16 hex digits). */
  readonly clientId: string;
  name = '';
  lang = '';
  echo = true;
  /** The host this connection comes from (IPv4, or IPv6 /64: addressKey), set by the node when it admits it: what per-host bounds count. */
  host: string | undefined;
  private readonly subs: SessionSubscriptions;
  /** Subscribe rule sets known to allow every subscription held (what an AUTH need not walk); made at the first AUTH (~200 B a connection otherwise). */
  private checkedRules: CheckedRules | undefined;
  /** Its credentials: static token or JWT, refreshes, the failed-auth throttle. */
  private readonly auth: ClientAuth;
  /** Drop reports owed to 'drop' subscriptions; made on the first drop. */
  private drops: DropReports | undefined;
  private readonly limiter: RateLimiter | undefined;
  /** Frames decoded while a token is verified, so what follows HELLO or AUTH is handled under the token it sent; made at the first wait. */
  private held: FrameHold | undefined;
  msgsIn = 0;
  msgsOut = 0;
  bytesOut = 0;

  constructor(
    makeTransport: (events: TransportEvents) => Transport,
    private readonly ctx: NodeContext,
  ) {
    super(makeTransport, settingsOf(ctx));
    const o = ctx.options;
    this.clientId = ctx.newClientId();
    this.subs = new SessionSubscriptions(this.clientId, ctx);
    // A message transport buffers whole messages: bound what it reads until HELLO (room for a HELLO and a few small frames batched with it).
    this.transport.limitInput?.(o.maxHelloSize + PRE_AUTH_MESSAGE_SLACK);
    if (o.publishRate > 0) this.limiter = new RateLimiter(o.publishRate, o.publishBurst);
    this.auth = new ClientAuth(ctx, this);
  }

  /** Token subject ('' when the node does not verify JWTs). */
  get subject(): string {
    return this.auth.subject;
  }

  get permissions(): Permissions | undefined {
    return this.auth.permissions;
  }

  get label(): string {
    return `client ${this.clientId}`;
  }

  get isOpen(): boolean {
    return this.phase === 'open';
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  /** Flow control does not resume input while a token is being verified (holdInput). */
  protected override resumeInput(): void {
    if (this.held?.holding !== true) super.resumeInput();
  }

  /** A token being verified keeps input paused too (the input budget does not resume it). */
  protected override pausedElsewhere(): boolean {
    return this.held?.holding === true || super.pausedElsewhere();
  }

  // ---- AuthenticatedConnection (client-auth.ts) ----

  get gone(): boolean {
    return this.phase === 'closing' || this.phase === 'closed';
  }

  hold(): void {
    (this.held ??= new FrameHold(this.transport)).start();
  }

  release(): void {
    this.held?.release(this.frameReader, () => this.gone, () => this.inputMayResume());
    this.ctx.flushRun();
  }

  handlerError(e: unknown, correlation: number): void {
    this.onHandlerError(e, correlation);
  }

  protected override flowHeld(stalled: boolean): void {
    if (stalled) this.ctx.stats.flowStalls++;
    else this.ctx.stats.flowPauses++;
  }

  subscriptions(): IterableIterator<Subscription> {
    return this.subs.values();
  }

  // ---- input ----

  /** Events this chunk published as a run (publish-run.ts) are delivered before the callback returns. */
  override onData(chunk: Uint8Array): void {
    super.onData(chunk);
    this.ctx.flushRun();
  }

  // An ERROR goes after the deliveries of what the client published before it (a run waiting: publish-run.ts).
  override sendError(code: ErrorCode, correlation: number, message: string, nack = false): void {
    this.ctx.flushRun();
    super.sendError(code, correlation, message, nack);
  }

  protected readonly onDecodeError = (e: ProtocolError): void => {
    this.ctx.flushRun();
    this.ctx.stats.protocolErrors++;
    if (this.phase === 'handshake' && e.code === 'MB_ERR_FRAME_TOO_LARGE') return this.fail(e.code, `before the handshake (maxHelloSize): ${e.message}`);
    if (e.fatal) this.fail(e.code, e.message);
    else this.sendError(e.code, 0, e.message);
  };

  protected readonly onFrame = (f: Frame, repeat = false): void => {
    if (this.held?.holding === true) {
      this.held.push(f);
      return;
    }
    if (this.phase !== 'open') {
      if (this.phase === 'handshake') this.onHello(f);
      return;
    }
    // Any other frame is handled after the deliveries of the events before it (publish-run.ts).
    if (f.type !== FrameType.PUB) this.ctx.flushRun();
    try {
      switch (f.type) {
        case FrameType.PUB:
        case FrameType.REQ:
          this.msgsIn++;
          if (this.limiter && !this.limiter.take()) {
            this.rateLimited(f);
            return;
          }
          // Header and topic as the event before it, still in the run: the checks below gave their answer (publish-run.ts).
          if (repeat && this.ctx.publishRepeat(this, f)) return;
          if (this.permissions && !this.permissions.canPublishFrame(f)) {
            this.ctx.stats.permissionDenied++;
            this.sendError('MB_ERR_PERMISSION_DENIED', answerId(f), `publish to "${f.topic}"`, f.ackRequested);
            return;
          }
          const ext = checkClientEvent(f, this.ctx.options);
          if (!this.replyAllowed(ext?.reply, f)) return;
          // A trace id is the first user's on this node: nobody else adds hops to its trace (trace-guard.ts).
          if (ext?.trace !== undefined) this.ctx.traces.claim(this, ext.trace);
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
          this.pong(f);
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
      // A refused PUB that asked for an ACK gets its NACK (ERROR otherwise).
      this.onHandlerError(e, answerId(f), f.type === FrameType.PUB && f.ackRequested);
    }
  };

  /** A reply topic is a publish the responder makes on the requester's behalf: the same permission, except in its own inbox. */
  private replyAllowed(reply: string | undefined, f: Frame): boolean {
    // Own inbox first: the usual reply topic, a string compare instead of the rules' trie walk.
    if (reply === undefined || !this.permissions || isOwnInbox(reply, this.clientId) || this.permissions.canPublish(reply)) return true;
    this.ctx.stats.permissionDenied++;
    this.sendError('MB_ERR_PERMISSION_DENIED', f.correlation, `reply topic "${reply}" (not allowed to publish there)`, f.ackRequested);
    return false;
  }

  private onHandlerError(e: unknown, correlation: number, nack = false): void {
    if (isMeshbusError(e)) {
      // Every malformed frame counts, whichever check refused it (session limits, ingress, routing).
      if (ERROR_CODES[e.code].kind === 'protocol') this.ctx.stats.protocolErrors++;
      else if (e.code === 'MB_ERR_PERMISSION_DENIED') this.ctx.stats.permissionDenied++;
      if (e.fatal) this.fail(e.code, e.message);
      else this.sendError(e.code, correlation, e.message, nack);
      return;
    }
    // One line a minute per bug (where it was thrown): one a client hits frame after frame hides no other.
    throttled(this.ctx.logger).error({ client: this.clientId, err: thrownText(e) }, 'internal error handling a frame', 'internal error handling a frame', errorSite(e));
    this.sendError('MB_ERR_INTERNAL', correlation, 'internal error');
  }

  private onHello(f: Frame): void {
    let hello: HelloBody, v: number;
    try {
      ({ hello, v } = readHello(f));
    } catch (e) {
      const err = e as MeshbusError;
      this.fail(err.code, err.message);
      return;
    }
    this.auth.hello(hello.token, () => this.welcome(hello, v, f.correlation));
  }

  /** The handshake succeeded: WELCOME, and the session is open. */
  private welcome(hello: HelloBody, v: number, correlation: number): void {
    this.transport.limitInput?.(undefined);
    this.name = hello.name ?? '';
    this.lang = hello.lang ?? '';
    this.echo = hello.echo ?? true;
    this.opened();
    this.send(welcomeFrame(this.ctx, this.clientId, v, correlation, this.transport.kind));
    this.ctx.opened(this);
  }

  tokenExpired(): void {
    if (this.phase !== 'open') return;
    this.ctx.stats.tokensExpired++;
    this.fail('MB_ERR_TOKEN_EXPIRED', `token of ${this.subject} expired; reconnect with a fresh one or send AUTH before expiry`);
  }

  /**
   * AUTH on a live connection: a refreshed token replaces the old one (answered with ACK). A token for another
   * subject is refused with MB_ERR_SUBJECT_CHANGED and the connection stays on its old token; an invalid or expired
   * one closes it. Once accepted, the subscriptions the new rules deny end (recheckSubscriptions). A host past its
   * budget of such checks (RefreshWalks) has its AUTH wait, input paused, the old token in force.
   */
  private onAuth(f: Frame): void {
    if (!this.ctx.jwt) return this.sendError('MB_ERR_UNEXPECTED_FRAME', f.correlation, 'this node does not use tokens');
    const body = decodeBody(controlBody(f, this.ctx.options.maxHelloSize));
    checkBodyKeys(body, 'AUTH');
    const token = typeof body.token === 'string' ? body.token : undefined;
    checkToken(token);
    this.auth.refreshArrived();
    const wait = this.ctx.authThrottle.walks.waitMs(this.host ?? remoteAddress(this.remote));
    if (wait === 0) return this.refresh(token, f.correlation);
    this.hold();
    setTimeout(() => {
      if (!this.gone) this.refresh(token, f.correlation);
    }, wait).unref();
  }

  private refresh(token: string | undefined, correlation: number): void {
    const before = this.permissions;
    this.auth.refresh(token, correlation, () => {
      // Only rules that may deny a subscription held are walked (CheckedRules), charged to the host (RefreshWalks); made once an AUTH changes the rules.
      if (!Permissions.sameSubscribeRules(before, this.permissions)) (this.checkedRules ??= new CheckedRules(this.clientId)).refreshed(before, this.permissions, () => this.recheckSubscriptions());
      this.send(encodeFrame({ type: FrameType.ACK, correlation }));
    });
  }

  /** Ends each subscription the current permissions deny, with ERROR on its sid: O(subscriptions), charged to the host. */
  private recheckSubscriptions(): void {
    this.ctx.authThrottle.walks.charge(this.host ?? remoteAddress(this.remote), this.subs.size);
    const denied: Subscription[] = [];
    for (const s of this.subs.values()) if (subscribeProblem(s.pattern, this.clientId, this.permissions) !== undefined) denied.push(s);
    for (const s of denied) {
      this.subs.remove(s.sid);
      this.ctx.stats.permissionDenied++;
      this.sendError('MB_ERR_PERMISSION_DENIED', s.sid, `subscribe to "${s.pattern}" (not allowed by the refreshed token)`);
    }
  }

  private rateLimited(f: Frame): void {
    this.ctx.stats.rateLimited++;
    // At most one ERROR a second, but every acked PUB gets its NACK.
    if (f.ackRequested || this.limiter!.shouldReport()) this.sendError('MB_ERR_RATE_LIMITED', answerId(f), `more than ${this.ctx.options.publishRate} publishes/s`, f.ackRequested);
  }

  private onSub(f: Frame): void {
    const sid = f.correlation;
    const pattern = f.topic;
    assertPattern(pattern, this.ctx.options);
    const problem = subscribeProblem(pattern, this.clientId, this.permissions);
    if (problem !== undefined) {
      this.ctx.stats.permissionDenied++;
      this.sendError('MB_ERR_PERMISSION_DENIED', sid, problem);
      return;
    }
    const body = decodeSub(controlBody(f, this.ctx.options.maxHelloSize));
    checkSub(body);
    if (sid === 0) throw new ProtocolError('MB_ERR_BAD_BODY', 'SUB needs a non-zero sid in correlation');
    const old = this.subs.get(sid);
    const adds = !body.durable && (old === undefined || old.detached === true);
    const refused = subscriptionRefusal(this.ctx.options, this.ctx.table, { connectionWeight: this.subs.weight, old, pattern, queue: body.q, adds, host: this.host });
    if (refused) {
      this.ctx.stats.subscriptionsRefused[refused.bound]++;
      this.sendError('MB_ERR_TOO_MANY_SUBSCRIPTIONS', sid, refused.message);
      return;
    }
    const d = this.ctx.durability;
    if (!d) refuseWithoutRedis(body);
    // Claimed once the SUB is past the checks that refuse it: a refused SUB holds no trace id.
    if (isTraceTopic(pattern) && !this.permissions?.explicitlyAllowsSubscribe(pattern)) this.ctx.traces.claim(this, pattern.slice(TRACE.length + 1));
    const sub: Subscription = d?.subscription(this, sid, pattern, body) ?? { sid, pattern, queue: body.q, owner: this, slow: body.slow ?? 'disconnect' };
    this.subs.add(sub, body.max);
    // Before any AUTH there is one rule set: nothing to forget.
    this.checkedRules?.subscribed(pattern, this.permissions);
    // Durable extras once the subscription routes: recovery, queue consumer, latest values.
    d?.subscribed(this, sub, body, () => this.subs.get(sid) === sub);
  }

  /** UNSUB: now, or (body `max`) after that many more deliveries. */
  private onUnsub(f: Frame): void {
    const sid = f.correlation;
    const max = f.payloadLen === 0 ? undefined : decodeUnsub(controlBody(f, this.ctx.options.maxHelloSize)).max;
    const sub = this.subs.get(sid);
    if (max === undefined || !sub) this.subs.remove(sid);
    else this.subs.limit(sub, max);
  }

  /** One plain delivery to `sub` (which has a max): Subscriber.countDelivery. */
  countDelivery(sub: Subscription): void {
    this.subs.countDelivery(sub);
  }

  // ---- output ----

  /** Queues one event; `drop`: droppable, for these 'drop' sids (else firm: past the bound, a slow consumer). SPEC §10.6. */
  deliver(f: Frame, sid: number, drop?: DropTag): void {
    if (!this.receives(f, 1)) return;
    let ok: boolean;
    if (sid === 0) {
      // The frame as it arrived, as a range of its input chunk: no view made per delivery (TickBatch joins them).
      ok = this.out.sendRange(f.buf, f.start, f.end, drop);
    } else {
      // A queue-group delivery names its member: a copy of the header with the sid set.
      ok = this.out.send(forwardedHeader(f, sid, f.hops), f.buf.subarray(f.start + FIXED_SIZE, f.end), drop);
    }
    if (ok) {
      this.msgsOut++;
      this.bytesOut += f.size;
    }
    // Queue, durable and resumed deliveries name their subscription: count those with a max.
    if (sid !== 0) this.subs.countSid(sid);
  }

  /** No token rule and no reserved-topic filter decides deliveries by topic: a run may hold several topics. */
  get deliversAnyTopic(): boolean {
    return this.permissions?.filtersDelivery !== true && this.subs.policy.reserved === undefined;
  }

  /** Plain deliveries of a run of events, back to back in `first.buf` up to `end` (Subscriber.deliverRange). */
  deliverRange(first: Frame, end: number, count: number): void {
    if (!this.receives(first, count)) return;
    this.msgsOut += this.out.sendRun(first.buf, first.start, end, count);
    this.bytesOut += this.out.runBytes;
  }

  /** Whether this connection gets events on `f`'s topic: open (else counted lost) and admitted. */
  private receives(f: Frame, count: number): boolean {
    if (this.phase !== 'open') {
      // Routed after it began closing (a run's targets fixed before one of its events made this a slow consumer): lost, and counted so (SPEC 10.6).
      this.ctx.stats.dropped.slow += count;
      return false;
    }
    return this.admits(f);
  }

  /** Subscriber.admits: allowed by its token and the node's reserved topics, a trace it may see, a dead letter of a topic it may read. */
  admits(f: Frame): boolean {
    if (this.permissions?.filtersDelivery && !this.permissions.canReceiveFrame(f)) return false;
    // The reserved filter, dead letters and traces concern `_` topics only: no topic decoded for the others.
    if (f.buf[f.topicStart] !== 0x5f /* _ */) return true;
    if (this.subs.policy.reserved?.canReceive(f.topic) === false) return false;
    if (isDeadLetterTopicAt(f.buf, f.topicStart, f.topicLen)) return mayReadDeadLetter(f, this.permissions);
    if (!isTraceTopicAt(f.buf, f.topicStart, f.topicLen)) return true;
    // A hop record reaches the tracer that owns its id here, or a token explicitly allowed its `_TRACE` topic (trace-guard.ts).
    return this.permissions?.explicitlyAllowsSubscribe(f.topic) === true || this.ctx.traces.mayReceive(this, f);
  }

  /** A droppable event was dropped: counted, and owed to each subscription it was for (DropReports). */
  override eventDropped(tag: DropTag): void {
    this.ctx.stats.dropped.slow++;
    (this.drops ??= new DropReports()).record(tag);
  }

  /** The wire took bytes: once below the mark, report drops at once rather than at the next tick. */
  protected override drained(): void {
    super.drained();
    if (this.drops?.due && !this.out.congested && this.phase === 'open') this.drops.send(this.out, this.subs);
  }

  protected override errorSent(): void {
    this.ctx.stats.errorsSent++;
  }

  protected override tlsOnPlainPort(): void {
    this.ctx.stats.protocolErrors++;
    logTlsMisfit(this.ctx.logger, remoteAddress(this.remote), { client: this.clientId, remote: this.remote }, 'TLS handshake on the plain client port refused: clients connect with tcp:// here (TLS needs --tls-cert and --tls-key)');
    super.tlsOnPlainPort();
  }

  protected override failing(code: ErrorCode, message: string): void {
    this.ctx.logger.debug({ client: this.clientId, remote: this.remote, code, message }, 'closing connection');
  }

  /** More than maxPending bytes queued (or nothing taken for writeDeadline): one final ERROR, then close. */
  overflow(): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.ctx.stats.slowConsumers++;
    // Once a minute per remote host (not host:port): a client that reconnects and falls behind again said a line each time.
    const host = remoteAddress(this.remote);
    throttled(this.ctx.logger).warn({ client: this.clientId, remote: this.remote, name: this.name || undefined, pending: this.out.pending }, 'slow consumer disconnected', 'slow consumer', host);
    this.fail('MB_ERR_SLOW_CONSUMER', `more than ${this.ctx.options.maxPending} bytes pending`);
  }

  /** Stops reading and routing; flushes and ends the transport (`reason`: the fatal error or GOODBYE code, if any). */
  close(reason?: ErrorCode): void {
    this.end(reason, reason ?? 'closed');
  }

  protected closing(): void {
    this.held?.clear();
    this.auth.stop();
    this.subs.clear();
  }

  protected override leaveRouting(): void {
    this.subs.clear();
  }

  protected override ended(): void {
    this.ctx.closed(this);
  }

  /** Liveness and write-deadline check, called by the node's timer. */
  tick(now: number): void {
    if (this.phase !== 'open') return;
    const o = this.ctx.options;
    this.checkStall(now, o.maxStall);
    this.drops?.send(this.out, this.subs);
    if (this.out.stalled(now, o.writeDeadline)) {
      this.overflow();
      return;
    }
    this.checkLiveness(now);
  }

  protected override stale(reason: string): void {
    this.ctx.stats.staleConnections++;
    super.stale(reason);
  }
}

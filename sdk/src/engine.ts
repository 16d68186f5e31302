import { DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_TOPIC, FrameType, Flags, codeFromNumber, decodeGoodbye, encodeBody, errorFromCode } from '@meshbus/proto';
import type { Extension, Frame, MeshbusError, SubBody, WelcomeBody } from '@meshbus/proto';
import { Connection, errorFrom, type ConnectionHandlers } from './connection.js';
import { Dispatcher, type DispatchHost } from './dispatcher.js';
import type { DurableExtension, DurableHost } from './durable-api.js';
import { asError, connectionClosed, safely } from './errors.js';
import { checkEvent } from './event-checks.js';
import { withRoom } from './send-buffer.js';
import { Heartbeat, connectionIo, heartbeatInterval } from './heartbeats.js';
import { Msg, type Responder } from './msg.js';
import type { CoreConnectOptions } from './options.js';
import { MemoryOutbox, addOrOverflow, isOutbox, type Outbox, type OutboxEntry, type OutboxLimits } from './outbox.js';
import { WaitingRequests } from './waiting-requests.js';
import { PendingTable, parseReply, replyToken, type PendingFlush, type PendingRequest } from './pending.js';
import { StatusFeed } from './status-feed.js';
import { OfflineOrder, owes } from './offline-order.js';
import { SessionLoop, isTerminal } from './session-loop.js';
import type { Subscription } from './subscription.js';
import type { ClientStats, ServerInfo, Status } from './types.js';

export type State = 'connecting' | 'connected' | 'reconnecting' | 'draining' | 'closed';

/** A node's SUB refusals (SPEC 10.3): BAD_TOPIC, BAD_BODY, PERMISSION_DENIED, TOO_MANY_SUBSCRIPTIONS, OUT_OF_RANGE,
 * NOT_DURABLE, INTERNAL. Not any code: a reply's or a settle's ERROR carries another id that can equal a sid. */
const SUB_REFUSALS = new Set([1009, 1010, 2004, 2008, 2021, 4020, 9001]);

/**
 * Test seam: called at each step of attaching a connection (see attach());
 * tests set it to make a step throw. Not exported from the package entries.
 * @internal
 */
export const attachFaults: { hook: ((client: object, step: AttachStep, index: number) => void) | undefined } = { hook: undefined };
/** @internal */
export type AttachStep = 'welcome' | 'sub' | 'outbox' | 'request' | 'ack' | 'heartbeat' | 'connected';

/**
 * The client's engine under the public facade (client.ts): the current
 * connection and what is attached to it (resubscribe, outbox, waiting
 * requests, heartbeat), frame routing, and the close bookkeeping. The
 * connect/backoff loop is session-loop.ts, received events go through
 * dispatcher.ts, answers through the correlation table (pending.ts).
 * @internal
 */
export class Engine implements DispatchHost, DurableHost {
  state: State = 'connecting';
  conn: Connection | undefined;
  /** The connection open() is attaching (see open()'s catch); the latest attached (kept once lost: drain() asks it). */
  private attached: Connection | undefined;
  latest: Connection | undefined;
  serverInfo: ServerInfo | undefined;
  readonly outbox: Outbox | undefined;
  /** Subscriptions refused with MB_ERR_TOO_MANY_REPLAYS, or resumed ones told MB_ERR_STORE_UNAVAILABLE, whose SUB is asked again shortly (once each), with the timer (cleared at close). */
  private readonly retrying = new Map<number, ReturnType<typeof setTimeout>>();
  readonly counters: ClientStats = { inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0, reconnects: 0, dropped: 0, statusDropped: 0 };
  /** Status listeners and iterators (status-feed.ts). */
  readonly feed = new StatusFeed(this.counters);
  readonly dispatcher: Dispatcher;
  readonly pending: PendingTable;
  readonly durable: DurableExtension | undefined;
  readonly loop: SessionLoop;
  /** Requests made while disconnected, sent on the next connection (bounded as the outbox). */
  readonly waitingRequests: WaitingRequests;
  readonly order = new OfflineOrder();
  private heartbeat: Heartbeat | undefined;
  inboxSid = 0;
  private everConnected = false;
  closeError: MeshbusError | undefined;
  readonly closedPromise: Promise<MeshbusError | undefined>;
  private resolveClosed!: (e: MeshbusError | undefined) => void;

  constructor(
    servers: string[],
    readonly options: CoreConnectOptions,
    /** The facade: answers for Msg (respond, settle) and the attach seam's first argument. */
    readonly responder: Responder & object,
  ) {
    const ob = options.outbox;
    this.outbox = ob === false ? undefined : isOutbox(ob) ? ob : new MemoryOutbox(ob ?? {});
    // A MemoryOutbox's limits read as fields (as durable.ts does); a custom Outbox or none: the defaults.
    this.waitingRequests = new WaitingRequests((ob || {}) as OutboxLimits);
    this.dispatcher = new Dispatcher(this);
    this.pending = new PendingTable((id) => this.dispatcher.subs.has(id) || id === this.inboxSid);
    this.durable = options.durable?.(this);
    this.loop = new SessionLoop(servers, options, this);
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
  }

  // ------------------------------------------------------------ host interfaces

  /** The connection to send on now (undefined offline); for `bytes` more, ClientError MB_ERR_SEND_BUFFER_FULL past maxPendingBytes (send-buffer.ts). */
  live(bytes?: number): Connection | undefined {
    const conn = this.conn && (this.state === 'connected' || this.state === 'draining') ? this.conn : undefined;
    return bytes === undefined ? conn : withRoom(conn, bytes, this.options.maxPendingBytes);
  }
  current(): Connection | undefined {
    return this.conn;
  }
  sub(sid: number): Subscription | undefined {
    return this.dispatcher.subs.get(sid);
  }
  unsub(sid: number): void {
    this.conn?.sendFrame({ type: FrameType.UNSUB, correlation: sid });
  }
  /** A reply on the inbox resolves its request only with the request's token (reply-token.ts). */
  reply(f: Frame, topic: string, ext: Extension | undefined): void {
    const r = parseReply(topic.slice(this.dispatcher.inboxPrefix.length));
    const req = r && this.pending.peek<PendingRequest>(r.id, 'request');
    if (!req || req.replyToken !== r.token) return;
    this.pending.take<PendingRequest>(r.id, 'request');
    req.resolve(new Msg(f, topic, ext, this.responder, req.codec));
  }
  emit(s: Status): void {
    this.feed.emit(s);
  }

  // ---------------------------------------------------------------- checks

  /** Throws ClientError MB_ERR_CONNECTION_CLOSED once the client is closed. */
  assertUsable(): void {
    if (this.state === 'closed') throw connectionClosed('client is closed');
  }
  /** assertUsable, and not draining: what needs a subscription (subscribe; a request, whose reply comes to the inbox drain unsubscribes). */
  assertNotDraining(): void {
    this.assertUsable();
    if (this.state === 'draining') throw connectionClosed('client is draining');
  }
  get maxTopic(): number {
    return this.serverInfo?.maxTopic || DEFAULT_MAX_TOPIC;
  }
  /** See event-checks.ts; against the current (or last) node's limits. */
  check(topic: string, data: Uint8Array, headers: Record<string, string> | undefined, trace: string | undefined, request: boolean): void {
    checkEvent({ maxTopic: this.maxTopic, maxPayload: this.serverInfo?.maxPayload ?? DEFAULT_MAX_PAYLOAD }, topic, data, headers, trace, request);
  }

  // --------------------------------------------------------------- sending

  sendPub(conn: Connection, topic: string, payload: Uint8Array, headers: Record<string, string> | undefined, correlation: number, trace?: string): void {
    if (trace !== undefined) {
      conn.sendEvent({ type: FrameType.PUB, topic, payload, ext: { headers, trace }, correlation, flags: Flags.TRACE });
    } else {
      conn.sendEvent({ type: FrameType.PUB, topic, payload, ext: headers ? { headers } : undefined, correlation });
    }
    conn.eventsGiven++;
    this.counters.outMsgs++;
    this.counters.outBytes += payload.length;
  }

  sendSub(conn: Connection, sub: Subscription): void {
    const o = sub.options;
    const body: SubBody = {};
    if (o.queue !== undefined) body.q = o.queue;
    // The node stops routing after this many (a queue group then picks other members); after a reconnect, what is left.
    if (o.max !== undefined) body.max = Math.max(1, o.max - sub.received);
    if (o.slow !== undefined) body.slow = o.slow;
    this.durable?.subBody(sub, body);
    if (o.latest === false) body.latest = false;
    const payload = Object.keys(body).length > 0 ? encodeBody(body) : undefined;
    conn.sendFrame({ type: FrameType.SUB, topic: sub.pattern, correlation: sub.sid, payload });
  }

  sendRequest(conn: Connection, req: PendingRequest): void {
    const prefix = this.dispatcher.inboxPrefix;
    if (this.inboxSid === 0) {
      this.inboxSid = this.pending.nextId();
      conn.sendFrame({ type: FrameType.SUB, topic: `${prefix}>`, correlation: this.inboxSid });
    }
    const id = this.pending.add(req);
    const ext: Extension = { reply: `${prefix}${id}.${(req.replyToken = replyToken())}` };
    if (req.headers) ext.headers = req.headers;
    conn.sendEvent({ type: FrameType.REQ, topic: req.topic, payload: req.payload, ext, correlation: id });
    this.counters.outMsgs++;
    this.counters.outBytes += req.payload.length;
  }

  /** Stores a publish made while disconnected; ClientError MB_ERR_OUTBOX_FULL (with an 'outbox-overflow' status) when it does not fit. */
  enqueue(topic: string, payload: Uint8Array, headers: Record<string, string> | undefined, trace: string | undefined): void {
    const ob = this.outbox;
    if (!ob) throw connectionClosed('not connected and the outbox is disabled');
    const entry: OutboxEntry = { topic, payload, at: Date.now() };
    if (headers) entry.headers = headers;
    if (trace !== undefined) entry.trace = trace;
    addOrOverflow(ob, entry, this);
    this.order.stamp(entry);
  }

  forgetRequest(req: PendingRequest): void {
    this.pending.remove(req);
    this.waitingRequests.remove(req);
  }

  /** Pings now and fails the connection unless something arrives within `timeout` ms. */
  probe(timeout?: number): void {
    this.heartbeat?.probe(timeout);
  }

  // ------------------------------------------------------------ attaching
  /**
   * Runs the connection `conn` through attach() (the session loop calls it
   * after WELCOME). The client never keeps a connection the loop counts as
   * failed (it would open another one beside it): on a throw it lets go of
   * it first, so its close does not start a second reconnect loop, then
   * closes it and rethrows.
   */
  adopt(conn: Connection, welcome: WelcomeBody): void {
    try {
      this.attach(conn, welcome);
    } catch (e) {
      const err = asError(e);
      if (this.conn === conn) {
        this.detach();
        this.pending.failAll(connectionClosed(`connection to ${conn.server.href} given up while attaching: ${err.message}`, { cause: err }));
      } else if (this.attached === conn) {
        // It was attached and dropped meanwhile: its close started the reconnect loop already.
        this.attached = undefined;
        this.emit({ type: 'error', error: err });
        return;
      }
      conn.close(err);
      throw err;
    } finally {
      this.attached = undefined;
    }
  }

  /**
   * Makes `conn` the current connection: resubscribe, flush the outbox, send
   * waiting requests. Exception-safe: every step that can fail is guarded and
   * fails alone, reported for what it concerns (a subscription ends with the
   * error, an outbox entry or a request gets an error naming it), so the
   * client never keeps a half-attached connection nor loses an item without
   * a word. If the connection drops meanwhile, what was not sent yet stays
   * queued for the next one.
   */
  private attach(conn: Connection, w: WelcomeBody): void {
    const hook = attachFaults.hook;
    const owner = this.responder;
    hook?.(owner, 'welcome', 0);
    const reconnected = this.everConnected;
    this.serverInfo = { server: conn.server.href, version: w.v, node: w.node, client: w.client, maxPayload: w.maxPayload, maxTopic: w.maxTopic, ping: w.ping, peers: [...w.peers] };
    this.conn = this.attached = this.latest = conn;
    if (reconnected) this.counters.reconnects++;
    this.everConnected = true;
    this.dispatcher.inboxPrefix = `_INBOX.${w.client}.`;
    this.inboxSid = 0;
    const learned = safely(() => this.loop.pool.learn(w.peers, conn.server, true));
    if (learned) this.emit({ type: 'error', error: learned });
    let i = 0;
    for (const sub of [...this.dispatcher.subs.values()]) {
      if (sub.draining) {
        // Its UNSUB went to the old connection; nothing more will come for it.
        this.dispatcher.end(sub, 'unsubscribed', false);
        continue;
      }
      const err = safely(() => {
        hook?.(owner, 'sub', i++);
        this.sendSub(conn, sub);
      });
      if (err) this.refused(sub, err);
    }
    // What waited goes out before anything published from now on, in the order it was made.
    const refused: Status[] = [];
    const flushed = this.flushOutbox(conn, refused);
    this.sendWaiting(conn, Infinity);
    const live = this.conn === conn; // else dropped meanwhile: the reconnect loop has taken over
    if (live && this.state !== 'draining') this.state = 'connected';
    // Told once live, nothing taken held aside: a listener's publish goes out after what waited, its close() counts the rest.
    for (const r of refused) this.emit(r);
    if (!live || this.conn !== conn) return;
    const o = this.options;
    const interval = heartbeatInterval(o.pingInterval ?? w.ping);
    const hb = safely(() => {
      hook?.(owner, 'heartbeat', 0);
      // peerInterval: the node's keepalive, what a backed-up upload waits for instead of its own PONGs.
      this.heartbeat = new Heartbeat(
        { interval, maxOut: o.maxPingOut ?? 2, wakeTimeout: o.wakeTimeout ?? 2000, peerInterval: heartbeatInterval(w.ping) },
        connectionIo(conn, () => conn.sendFrame({ type: FrameType.PING, correlation: this.pending.nextId() })),
      );
      this.heartbeat.start();
    });
    if (hb) {
      // Without a heartbeat a dead socket would go unnoticed: give this connection up.
      this.emit({ type: 'error', error: hb });
      conn.close(hb);
      return;
    }
    const done = safely(() => {
      hook?.(owner, 'connected', 0);
      this.emit({ type: 'connected', server: conn.server.href, info: this.serverInfo!, reconnected });
      if (flushed > 0) this.emit({ type: 'outbox-flushed', count: flushed });
    });
    if (done) this.emit({ type: 'error', error: done });
  }

  /** Sends the requests and acked publishes made offline before `before` (OfflineOrder), oldest first; on a closed `conn` they stay. */
  private sendWaiting(conn: Connection, before: number): void {
    const hook = attachFaults.hook;
    const d = this.durable;
    for (let i = 0; conn.isOpen; ) {
      const r = this.waitingRequests.list[0];
      const rs = r ? this.order.seq(r) : Infinity;
      if (Math.min(rs, d?.firstSeq() ?? Infinity) >= before) return;
      // Acked publishes made before this request (and before `before`) first.
      d?.resend(conn, (n) => hook?.(this.responder, 'ack', n), Math.min(rs, before));
      if (!r || rs >= before || !conn.isOpen) continue;
      this.waitingRequests.shift();
      const err = safely(() => {
        hook?.(this.responder, 'request', i++);
        this.sendRequest(conn, r);
      });
      if (err) {
        this.forgetRequest(r);
        r.reject(err);
      }
    }
  }

  /**
   * Sends the outbox on `conn`, oldest first; returns how many were sent. An
   * entry the node cannot take (e.g. its payload exceeds this node's limit)
   * gets an 'error' status naming it, in `refused` (told by attach once
   * live); when the connection drops meanwhile, the rest goes back.
   */
  private flushOutbox(conn: Connection, refused: Status[]): number {
    const ob = this.outbox;
    if (!ob || ob.count === 0) return 0;
    let entries: OutboxEntry[];
    try {
      entries = ob.takeAll();
    } catch (e) {
      this.emit({ type: 'error', error: asError(e) });
      return 0;
    }
    const hook = attachFaults.hook;
    let flushed = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      let err: MeshbusError | undefined;
      // Each entry is handed to the transport before the next: taken by it, refused with a status, or put back.
      this.sendWaiting(conn, this.order.seq(e));
      if (conn.isOpen) {
        err = safely(() => {
          hook?.(this.responder, 'outbox', i);
          this.check(e.topic, e.payload, e.headers, e.trace, false);
          this.sendPub(conn, e.topic, e.payload, e.headers, 0, e.trace);
        });
      }
      if (!conn.flushNow()) {
        // The connection dropped (or the transport refused this write): keep the rest for the next one.
        for (const rest of entries.slice(i)) {
          const back = safely(() => ob.add(rest));
          if (back) this.emit({ type: 'error', error: back, entry: rest });
        }
        break;
      }
      if (err) refused.push({ type: 'error', error: err, entry: e });
      else flushed++;
    }
    return flushed;
  }

  /** Lets go of the current connection without closing it (its closing will not be reported). */
  private detach(): void {
    this.conn = undefined;
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    this.inboxSid = 0;
    if (this.state === 'connected') this.state = 'reconnecting';
  }

  readonly handlers: ConnectionHandlers = {
    frame: (conn, f) => this.onFrame(conn, f),
    problem: (_conn, e) => this.emit({ type: 'error', error: e }),
    closed: (conn, error) => this.onConnectionClosed(conn, error),
  };

  private onConnectionClosed(conn: Connection, error: MeshbusError | undefined): void {
    if (conn !== this.conn) return;
    this.detach();
    const lost = connectionClosed(`connection to ${conn.server.href} lost${error ? `: ${error.message}` : ''}`, { cause: error });
    this.pending.failAll(lost);
    if ((this.state as State) === 'closed') return;
    this.emit({ type: 'disconnected', server: conn.server.href, ...(error ? { error } : {}) });
    if ((this.state as State) === 'closed') return; // a listener closed it: it stays closed (it went on to reconnect)
    if ((this.state === 'draining' && !owes(this)) || this.options.reconnect === false || (error && isTerminal(error, this.options))) {
      this.finish(error);
      return;
    }
    // detach() made a connected client 'reconnecting'; a draining one stays so on its way to the next connection.
    this.loop.run('reconnect', error?.code === 'MB_ERR_DRAINING').catch((e: unknown) => {
      if (this.state !== 'closed') this.finish(asError(e));
    });
  }

  // ------------------------------------------------------------- receiving

  private onFrame(conn: Connection, f: Frame): void {
    switch (f.type) {
      case FrameType.PUB:
      case FrameType.REQ:
        this.dispatcher.event(f);
        return;
      case FrameType.PING:
        conn.pong(f.correlation);
        return;
      case FrameType.PONG:
        conn.ponged(f.correlation);
        this.pending.take<PendingFlush>(f.correlation, 'flush')?.resolve();
        return;
      case FrameType.ERROR:
        this.onError(conn, f.correlation, errorFrom(f));
        return;
      case FrameType.ACK:
      case FrameType.NACK:
        this.durable?.onAck(f);
        return;
      case FrameType.GOODBYE:
        this.onGoodbye(conn, f);
        return;
      default:
        // WELCOME again, ACK/NACK without a request for them, cluster frames: not for this client.
        return;
    }
  }

  private onError(conn: Connection, correlation: number, err: MeshbusError & { count?: number }): void {
    // Sids and request ids share one id space (PendingTable.nextId): correlation 0 is no subscription's.
    const sub = this.dispatcher.subs.get(correlation);
    if (correlation !== 0) {
      const req = this.pending.take<PendingRequest>(correlation, 'request');
      if (req) {
        req.reject(err);
        if (!err.fatal) return;
      }
      // TOO_MANY_REPLAYS (SPEC §15.3), or STORE_UNAVAILABLE on a resumed one: ask again shortly, once per subscription.
      if (sub && (err.num === 2040 || (err.num === 4001 && sub.sequenced))) {
        if (!this.retrying.has(sub.sid)) {
          const again = (): void => {
            this.retrying.delete(sub.sid);
            if (this.dispatcher.subs.get(sub.sid) === sub) this.sendSub(conn, sub);
          };
          this.retrying.set(sub.sid, setTimeout(again, err.num === 2040 ? 300 : 1000));
        }
        if (err.num === 2040) return;
      }
      if (sub && SUB_REFUSALS.has(err.num)) {
        this.refused(sub, err);
        return;
      }
    }
    if (err.num === 2006 || err.num === 2016) this.dispatcher.nodeSlow(correlation, err);
    else if (!err.fatal) this.emit({ type: 'error', error: err, sid: sub?.sid });
    if (err.fatal) conn.close(err);
  }

  /** Ends `sub` with `err` (its SUB could not be sent, or the node refused it) and reports it. */
  private refused(sub: Subscription, err: MeshbusError): void {
    this.dispatcher.end(sub, 'unsubscribed', false, err);
    this.emit({ type: 'error', error: err, sid: sub.sid });
  }

  private onGoodbye(conn: Connection, f: Frame): void {
    let err: MeshbusError;
    try {
      const g = decodeGoodbye(f.payload);
      err = errorFromCode(codeFromNumber(g.code), g.reason);
      if (g.reconnect && g.reconnect.length > 0) this.loop.redirect(g.reconnect, conn.server);
      // Acked publishes the node has not answered were not taken (SPEC 10.7): they go on the next connection. A draining
      // node reads what was sent before its GOODBYE was read, until this side closes (flushed by the close below).
      if (g.answered === true) this.durable?.drained();
      if (g.answered === true) conn.eventsConfirmed = conn.eventsGiven;
    } catch (e) {
      err = asError(e);
    }
    this.loop.pool.avoid(conn.server.href);
    conn.close(err);
  }

  /** Enters the closed state for good. */
  finish(error: MeshbusError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = error;
    this.loop.stop();
    for (const t of this.retrying.values()) clearTimeout(t); // no timer outlives the client (it held the process)
    const conn = this.conn;
    this.detach();
    conn?.close();
    const closedErr = connectionClosed('client is closed', { cause: error });
    this.pending.failAll(closedErr);
    this.waitingRequests.rejectAll(closedErr);
    this.durable?.close(closedErr);
    this.dispatcher.endAll(error);
    const unsent = this.outbox?.clear() ?? 0;
    this.emit(error ? { type: 'closed', error, unsent } : { type: 'closed', unsent });
    this.feed.end();
    this.resolveClosed(error);
  }
}

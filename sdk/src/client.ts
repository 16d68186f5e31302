import { ClientError, FrameType, assertPattern, assertWellFormed, encodeBody, isMeshbusError, type MeshbusError, type Position } from '@meshbus/proto';
import { toBytes } from './codecs.js';
import type { Connection } from './connection.js';
import { Engine } from './engine.js';
import type { PendingFlush, PendingRequest } from './pending.js';
import { drainClient } from './drain.js';
import { asError, checkKind, connectionClosed, invalid, messageOf, safely } from './errors.js';
import { checkConnectOptions, checkDeadline, checkSubscribeOptions, optionsObject } from './option-checks.js';
import type { Msg, Responder } from './msg.js';
import type { CoreConnectOptions, PublishOptions, RequestOptions } from './options.js';
import { DEFAULT_MAX_PENDING_BYTES, whenWritable, withRoom } from './send-buffer.js';
import { Subscription, type SubscribeOptions, type SubscriptionOwner } from './subscription.js';
import { after } from './timer.js';
import type { ClientStats, ServerInfo, Status } from './types.js';

export { attachFaults, type AttachStep } from './engine.js';
export { CLIENT_LANG } from './session-loop.js';
export type { ClientStats, DropReason } from './types.js';

/**
 * The meshbus protocol client: platform-free, the transports are injected.
 * Create it with `connect()` (from `@meshbus/sdk` in Node, or the core entry
 * with your own transport factory). This class is the public API; the
 * state lives in the engine (engine.ts, session-loop.ts, dispatcher.ts,
 * pending.ts; durable features in durable.ts when enabled).
 */
export class Client implements SubscriptionOwner, Responder {
  private readonly e: Engine;
  /** The first drain()'s outcome, which every later call shares. */
  private draining: Promise<void> | undefined;

  private constructor(servers: string | string[], options: CoreConnectOptions) {
    this.e = new Engine(Array.isArray(servers) ? servers : [servers], options, this);
  }

  /** Connects to the first reachable server; see ConnectOptions for the policy. */
  static async connect(servers: string | string[], options: CoreConnectOptions): Promise<Client> {
    if (typeof optionsObject(options).transport !== 'function') {
      throw invalid('options.transport (a TransportFactory) is required');
    }
    for (const k of ['name', 'token'] as const) {
      const v = options[k];
      if (v !== undefined) {
        if (typeof v !== 'string') throw invalid(`${k} must be a string`);
        assertWellFormed(v, k);
      }
    }
    checkConnectOptions(options);
    const c = new Client(servers, options);
    const signal = options.signal;
    const abort = (): void => c.e.finish(connectionClosed('connect aborted'));
    signal?.addEventListener('abort', abort);
    try {
      if (signal?.aborted) abort();
      await c.e.loop.run('initial', false);
    } catch (e) {
      const err = asError(e);
      c.e.finish(err);
      throw err;
    } finally {
      signal?.removeEventListener('abort', abort);
    }
    return c;
  }

  /** What the current node said in WELCOME; undefined while disconnected. */
  get info(): ServerInfo | undefined {
    return this.e.conn ? this.e.serverInfo : undefined;
  }
  /** The URL of the node this client is connected to, if any. */
  get server(): string | undefined {
    return this.e.conn?.server.href;
  }
  get isConnected(): boolean {
    return this.e.live() !== undefined;
  }
  get isClosed(): boolean {
    return this.e.state === 'closed';
  }
  /** Every server the client knows, including peers learned from nodes. */
  get servers(): string[] {
    return this.e.loop.pool.list().map((u) => u.href);
  }
  /** Publishes waiting in the outbox. */
  get outboxCount(): number {
    return this.e.outbox?.count ?? 0;
  }
  /**
   * Bytes given to the current connection that the OS (TCP) or the
   * WebSocket has not taken yet; 0 while disconnected. Past
   * `maxPendingBytes` publishes throw ClientError MB_ERR_SEND_BUFFER_FULL.
   */
  get pendingBytes(): number {
    return this.e.conn?.unsent ?? 0;
  }
  /**
   * Resolves once `pendingBytes` is at most `below` (default half of
   * `maxPendingBytes`), or at once while disconnected (the outbox bounds
   * publishes then); rejects MB_ERR_CONNECTION_CLOSED once closed. A
   * publisher faster than its link awaits it instead of growing without
   * bound.
   */
  whenWritable(below = (this.e.options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES) / 2): Promise<void> {
    if (typeof below !== 'number' || !(below >= 0)) return Promise.reject(invalid(`below: ${String(below)}`));
    return whenWritable(this.e, below);
  }
  stats(): ClientStats {
    return { ...this.e.counters };
  }

  /** Resolves when the client is closed: undefined after close()/drain(), else the terminal error. */
  closed(): Promise<MeshbusError | undefined> {
    return this.e.closedPromise;
  }

  /** Adds a status listener; returns a function that removes it. */
  on(type: 'status', listener: (s: Status) => void): () => void {
    // Another event name was taken and its listener never called.
    if (type !== 'status') throw invalid(`on: 'status' expected, got ${String(type)}`);
    checkKind('listener', listener, 'function');
    return this.e.feed.emitter.on(type, listener);
  }

  /** Status events from now on as an async iterator; ends when the client closes. */
  status(): AsyncIterableIterator<Status> {
    return this.e.feed.iterator(this.e.state === 'closed');
  }

  /**
   * Publishes an event. Validates the topic and the payload size against the
   * node's limit first (ProtocolError MB_ERR_BAD_TOPIC, SessionError
   * MB_ERR_PAYLOAD_TOO_LARGE). While disconnected the event goes to the
   * outbox, or throws ClientError MB_ERR_OUTBOX_FULL when it is full.
   *
   * With `ack` the node acknowledges: the promise resolves once the node
   * accepted the event (for a durable topic once Redis has it, with its
   * position) and rejects with the NACK's error (StoreError
   * MB_ERR_STORE_UNAVAILABLE; StoreError MB_ERR_NOT_DURABLE when no durable
   * rule or queue covers the topic on that node, or it has no durability:
   * the event is then not delivered; StoreError MB_ERR_STORE_FULL past a
   * store quota of the node: not stored, not delivered) or MB_ERR_CONNECTION_CLOSED when the
   * connection dropped first (outcome unknown). `delay` / `at` publish later
   * (durable topics; elsewhere refused the same way, reported as an `error`
   * status without `ack`). These three need the durable features (`durable`
   * option; the Node entry has them), else ClientError MB_ERR_INVALID_ARGUMENT.
   */
  publish(topic: string, payload: unknown, options: PublishOptions & { ack: true }): Promise<Position | undefined>;
  publish(topic: string, payload?: unknown, options?: PublishOptions): void;
  publish(topic: string, payload?: unknown, options?: PublishOptions): void | Promise<Position | undefined> {
    const e = this.e;
    e.assertUsable();
    checkKind('options', options, 'object');
    const acked = options?.ack || options?.delay !== undefined || options?.at !== undefined;
    const data = toBytes(payload, options?.codec);
    const headers = options?.headers;
    const trace = acked ? undefined : options?.trace;
    // The same checks online and offline: an entry the outbox accepts can be sent.
    e.check(topic, data, headers, trace, false);
    if (acked) {
      const promise = this.durable('ack, delay and at').publish(topic, data, options);
      if (options.ack) return promise;
      promise.catch((err: unknown) => e.emit({ type: 'error', error: asError(err) }));
      return;
    }
    const conn = e.live(data.length);
    if (conn) e.sendPub(conn, topic, data, headers, 0, trace);
    else e.enqueue(topic, data, headers, trace);
  }

  /**
   * Subscribes to a pattern (`*` one token, `>` the rest). Returns a
   * Subscription to iterate with `for await`, unless `callback` is given.
   * `since`, `recover` and `durable` need the durable features.
   */
  subscribe(pattern: string, options: SubscribeOptions = {}): Subscription {
    const e = this.e;
    e.assertNotDraining();
    assertPattern(pattern, { maxTopicLength: e.maxTopic });
    checkKind('options', options, 'object');
    checkKind('callback', options.callback, 'function');
    checkKind('codec', options.codec, 'codec');
    const q = options.queue;
    if (q !== undefined && (typeof q !== 'string' || q.length === 0 || q.length > 256)) {
      throw invalid(`queue group must be a non-empty string of at most 256 characters`);
    }
    if (q !== undefined) assertWellFormed(q, 'queue group');
    if (options.slow !== undefined && options.slow !== 'drop' && options.slow !== 'disconnect') {
      throw invalid(`slow must be 'drop' or 'disconnect', got ${String(options.slow)}`);
    }
    if (options.max !== undefined && !(Number.isInteger(options.max) && options.max > 0)) {
      throw invalid(`max must be a positive integer, got ${String(options.max)}`);
    }
    checkSubscribeOptions(options);
    if (options.since !== undefined || options.recover || options.durable) this.durable('since, recover and durable');
    // Past maxPendingBytes a SUB is refused as an event is (a subscribe/unsubscribe loop toward a stopped node grew 150 MiB in 6 s).
    withRoom(e.conn, pattern.length, e.options.maxPendingBytes);
    const sub = new Subscription(this, e.pending.nextId(), pattern, { ...options, codec: options.codec ?? e.options.codec });
    e.dispatcher.add(sub);
    if (e.conn) e.sendSub(e.conn, sub);
    return sub;
  }

  /**
   * Sends a request and resolves with the first reply. Rejects at once with
   * SessionError MB_ERR_NO_RESPONDERS when nothing subscribes to the topic,
   * with ClientError MB_ERR_TIMEOUT after `timeout` ms. A request made while
   * disconnected is sent on reconnect if its deadline has not passed; one
   * in flight when the connection drops is rejected (MB_ERR_CONNECTION_CLOSED),
   * and so at once is one made during drain() (its reply could not arrive:
   * drain unsubscribes the inbox).
   */
  request(topic: string, payload?: unknown, options: RequestOptions = {}): Promise<Msg> {
    const e = this.e;
    try {
      e.assertNotDraining();
      checkKind('options', options, 'object');
      checkKind('replyCodec', options.replyCodec, 'codec');
      const data = toBytes(payload, options.codec);
      e.check(topic, data, options.headers, undefined, true);
      // As flush()'s: a string that compares as a number ('50') was taken.
      checkDeadline(options.timeout);
      const timeout = options.timeout ?? e.options.requestTimeout ?? 5000;
      const req: PendingRequest = { kind: 'request', id: 0, topic, payload: data, headers: options.headers, codec: options.replyCodec ?? e.options.codec, resolve: () => {}, reject: () => {} };
      const conn = e.live(data.length);
      if (!conn) {
        try {
          e.waitingRequests.add(req);
        } catch (err) {
          const w = e.waitingRequests;
          e.emit({ type: 'outbox-overflow', error: err as ClientError, topic, count: w.list.length, bytes: w.bytes });
          throw err;
        }
        e.order.stamp(req);
      }
      return new Promise<Msg>((resolve, reject) => {
        req.resolve = resolve;
        req.reject = reject;
        req.timer = after(timeout, () => {
          e.forgetRequest(req);
          reject(new ClientError('MB_ERR_TIMEOUT', `no reply on "${topic}" within ${timeout} ms`));
        });
        if (conn) e.sendRequest(conn, req);
      });
    } catch (err) {
      return Promise.reject(asError(err));
    }
  }

  /**
   * Unsubscribes `sub` (same as `sub.unsubscribe()`) at once: events the node
   * routed to it before the UNSUB are counted as dropped (status 'dropped');
   * use `sub.drain()` to receive them.
   */
  unsubscribe(sub: Subscription): void {
    // Anything else threw a TypeError; another client's live subscription would have sent an UNSUB for its sid here.
    const mine = sub instanceof Subscription && (sub.isClosed || this.e.dispatcher.subs.get(sub.sid) === sub);
    if (!mine) throw invalid('unsubscribe: a Subscription of this client expected');
    if (sub.isClosed) return;
    this.e.dispatcher.end(sub, 'unsubscribed', true);
  }

  /**
   * @internal `sub.drain()`: UNSUB, then a round trip (the node answers the
   * PING after every event it routed to the subscription before the UNSUB),
   * delivering those events, then ends the subscription. Without a
   * connection nothing is in flight and it ends at once. A connection lost
   * during the drain ends it too (the node forgets the subscription with the
   * connection).
   */
  async drainSub(sub: Subscription): Promise<void> {
    if (sub.isClosed) return;
    const d = this.e.dispatcher;
    const conn = this.e.conn;
    if (!conn || sub.draining) {
      if (!sub.draining) d.end(sub, 'unsubscribed', false);
      return sub.closed.then(() => undefined);
    }
    sub.draining = true;
    this.e.unsub(sub.sid);
    try {
      await this.flush();
    } catch {
      /* disconnected or closed: the node has dropped the subscription with the connection */
    }
    if (!sub.isClosed) d.end(sub, 'unsubscribed', false);
  }

  /**
   * Round trip to the node (PING → PONG). When it resolves, the node has
   * processed every frame sent before. Rejects with MB_ERR_CONNECTION_CLOSED
   * when disconnected, MB_ERR_TIMEOUT after `timeout` ms (default requestTimeout).
   */
  flush(timeout = this.e.options.requestTimeout ?? 5000): Promise<void> {
    const e = this.e;
    const conn = e.conn;
    const bad = safely(() => checkDeadline(timeout));
    if (bad) return Promise.reject(bad);
    if (!conn || e.state === 'closed') {
      return Promise.reject(connectionClosed(e.state === 'closed' ? 'client is closed' : 'not connected'));
    }
    return new Promise<void>((resolve, reject) => {
      const w: PendingFlush = { kind: 'flush', id: 0, resolve, reject };
      const id = e.pending.add(w);
      w.timer = after(timeout, () => {
        e.pending.remove(w);
        reject(new ClientError('MB_ERR_TIMEOUT', `no PONG within ${timeout} ms`));
      });
      conn.sendFrame({ type: FrameType.PING, correlation: id });
    });
  }

  /**
   * Graceful stop: unsubscribes everything, waits until the node has
   * processed that (events already on the way are still delivered), ends
   * the subscriptions, then closes. Publishes remain allowed until the close.
   * Acked publishes are waited for (their ACK, NACK, `ackTimeout` or the
   * connection's loss). Made while disconnected, it waits for the next
   * connection, which sends what waited offline first (the outbox, acked
   * publishes), or for the client to close (`close()`, reconnect attempts
   * exhausted); requests made offline are rejected unsent
   * (MB_ERR_CONNECTION_CLOSED), as a request made while draining is. A
   * connection lost while something waits for one (acked publishes a
   * draining node did not take, the outbox) is followed the same way. While
   * the app's own suspend() holds, no connection comes until resume(): it
   * closes at once (the `closed` event counts the outbox as `unsent`), and
   * a suspend() made during a drain ends it so. Past `drainTimeout` (30 s)
   * it closes as close() does (what is still owed rejected, or counted
   * `unsent`) and rejects with ClientError MB_ERR_TIMEOUT.
   */
  drain(): Promise<void> {
    // A second call has the first one's outcome (it resolved when the client closed, while the first rejected).
    return (this.draining ??= drainClient(this.e, (t) => this.flush(t), () => this.close(), this.byApp));
  }

  /** Closes now: pending requests and flushes are rejected (MB_ERR_CONNECTION_CLOSED), subscriptions end. */
  async close(): Promise<void> {
    const e = this.e;
    if (e.state !== 'closed') {
      goodbye(e.conn, 'client closing');
      e.finish(undefined);
    }
    await e.closedPromise;
  }

  /**
   * Checks the connection now: pings and declares it dead (reconnecting)
   * unless something arrives within `timeout` ms. Call it when the app
   * comes to the foreground, the network comes back, or the page becomes
   * visible: the socket may be silently dead. Without a connection, makes
   * the next reconnect attempt now instead of after its backoff delay.
   */
  checkLiveness(timeout?: number): void {
    checkDeadline(timeout);
    const e = this.e;
    // Without a connection, the next attempt now: a reconnect waiting out its backoff (up to 20 s) waited
    // on through every hint that the network or the app was back, unless an offline came first.
    if (e.conn) e.probe(timeout);
    else e.loop.release();
  }

  /**
   * Drops the connection on purpose and makes no attempt to reconnect until
   * resume(): subscriptions, the outbox and waiting requests are kept
   * (publishes go to the outbox). For an app moving to the background.
   */
  suspend(): void {
    this.byApp = true;
    this.hold();
    // A drain waiting for a connection would wait for resume(): it ends now, as one whose connection is dropped does.
    if (this.e.state === 'draining') void this.close();
  }

  /**
   * @internal The platform lifecycle's suspend() (`true`: background) and
   * resume() of that suspension (`false`), told apart from the app's own:
   * a client the app suspended, also while the lifecycle's suspension held
   * (a logout in the background), stays suspended until the app's resume().
   */
  platformHold(on: boolean): void {
    if (on) this.hold();
    else if (!this.byApp) this.resume();
  }

  /** The app's own suspend() holds (not only the platform lifecycle's); ended by resume(). */
  private byApp = false;

  private hold(): void {
    const e = this.e;
    if (e.state === 'closed' || e.loop.suspended) return;
    e.loop.suspended = true;
    const why = (): ClientError => connectionClosed('client suspended');
    e.loop.abandon(why());
    const conn = e.conn;
    if (conn) {
      goodbye(conn, 'client suspended');
      conn.close(why());
    }
  }

  /**
   * Ends suspend(): reconnects now, without a backoff delay (getToken() is
   * called for the new connection, so the token is fresh). If the connection
   * was kept, probes it instead (checkLiveness).
   */
  resume(): void {
    const e = this.e;
    if (e.state === 'closed') return;
    this.byApp = false;
    if (!e.loop.suspended) {
      this.checkLiveness();
      return;
    }
    e.loop.suspended = false;
    e.loop.release();
  }

  get isSuspended(): boolean {
    return this.e.loop.suspended;
  }

  /**
   * What the platform says about the network (browser online/offline,
   * React Native NetInfo). Offline: reconnect attempts pause (no storm while
   * there is no network; the current connection, if any, is left to the
   * heartbeat). Back online: reconnect now, or probe the current connection,
   * which may have died with the old network.
   */
  setOnline(online: boolean): void {
    if (this.e.state === 'closed') return;
    this.e.loop.offline = !online;
    // Probe the connection, or make the attempt now (held loops go on): also when no offline came first.
    if (online) this.checkLiveness();
  }

  // ------------------------------------------- subscription and Msg callbacks

  /** @internal */
  slowConsumer(sub: Subscription, first: boolean): void {
    this.e.dispatcher.slowConsumer(sub, first);
  }

  /** @internal */
  catchUp(sub: Subscription): void {
    const conn = this.e.live();
    // Not connected: the reconnect subscribes again from the position anyway; no longer behind: that resume caught it up.
    if (conn && sub.behind && this.e.dispatcher.subs.get(sub.sid) === sub) this.e.sendSub(conn, sub);
  }

  /** @internal */
  callbackFailed(sub: Subscription, error: unknown): void {
    const err = isMeshbusError(error) ? error : invalid(`subscription callback threw: ${messageOf(error)}`, { cause: error });
    this.e.emit({ type: 'error', error: err, sid: sub.sid });
  }

  /** @internal Answers a request (Msg.respond). */
  respond(reply: string, correlation: number, payload: unknown, options?: PublishOptions): void {
    const e = this.e;
    e.assertUsable();
    checkKind('options', options, 'object');
    const data = toBytes(payload, options?.codec);
    e.check(reply, data, options?.headers, options?.trace, false);
    const conn = withRoom(e.conn, data.length, e.options.maxPendingBytes);
    if (conn) e.sendPub(conn, reply, data, options?.headers, correlation, options?.trace);
    // No outbox for replies: the requester's inbox is tied to its connection.
    else throw connectionClosed('not connected; the reply cannot be delivered later');
  }

  /**
   * @internal ACKs (ok) or NACKs a durable queue delivery, on the connection it came on only: its id is that node's
   * (another node took it as one of its own deliveries, or refused it). Else the node fails it at the close: retried.
   */
  settle(correlation: number, ok: boolean, reason: string | undefined, link: number): void {
    if (link === this.link) this.e.durable?.settle(correlation, ok, reason);
  }
  /** @internal Msg's Responder.link: connections attached so far. */
  get link(): number {
    return this.e.counters.reconnects;
  }

  /** The durable features, or ClientError MB_ERR_INVALID_ARGUMENT naming what needed them. */
  private durable(what: string): NonNullable<Engine['durable']> {
    const d = this.e.durable;
    if (!d) throw invalid(`${what} need connect(servers, { durable }) (@meshbus/sdk/durable)`);
    return d;
  }
}

/** Tells the node this client leaves on purpose (GOODBYE, code 0). */
function goodbye(conn: Connection | undefined, reason: string): void {
  conn?.sendFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 0, reason }) });
}

/** Connects a client with an injected transport factory (the platform-free entry). */
export function connect(servers: string | string[], options: CoreConnectOptions): Promise<Client> {
  return Client.connect(servers, options);
}

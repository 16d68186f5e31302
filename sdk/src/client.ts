import {
  ClientError,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_MAX_TOPIC,
  FrameType,
  Flags,
  MAX_EXT,
  MAX_VERSION,
  MIN_VERSION,
  TopicTrie,
  assertPattern,
  assertHeaderName,
  assertTopic,
  assertWellFormed,
  codeFromNumber,
  decodeGoodbye,
  decodePubAck,
  decodeSubAck,
  encodeBody,
  encodeExtension,
  errorFromCode,
  isMeshbusError,
  utf8Length,
  type Extension,
  type Frame,
  type HelloBody,
  type MeshbusError,
  type Position,
  type SubBody,
  type WelcomeBody,
} from '@meshbus/proto';
import { Backoff } from './backoff.js';
import { toBytes, type Codec } from './codecs.js';
import { Connection, errorFrom, type ConnectionHandlers } from './connection.js';
import { Emitter } from './emitter.js';
import { Heartbeat } from './heartbeats.js';
import { Msg, type Responder } from './msg.js';
import type { CoreConnectOptions, PublishOptions, RequestOptions, ServerInfo, Status } from './options.js';
import { MemoryOutbox, type Outbox, type OutboxEntry } from './outbox.js';
import { QueuedIterator } from './queued-iterator.js';
import { ServerPool, parseServer, type ServerUrl } from './servers.js';
import { Subscription, type SubscribeOptions, type SubscriptionOwner } from './subscription.js';
import { peekTopicBytes, topicBytes } from './topic-cache.js';
import type { TransportFactory } from './transport.js';

export const CLIENT_LANG = 'meshbus-js/0.1.0';

type State = 'connecting' | 'connected' | 'reconnecting' | 'draining' | 'closed';

interface PendingRequest {
  id: number;
  topic: string;
  payload: Uint8Array;
  headers: Record<string, string> | undefined;
  codec: Codec | undefined;
  resolve: (m: Msg) => void;
  reject: (e: MeshbusError) => void;
  timer: ReturnType<typeof setTimeout>;
}

interface Dispatch {
  /** The topic bytes (a copy). */
  readonly bytes: Uint8Array;
  readonly topic: string;
  /** Plain subscriptions matching the topic, valid while the trie's version equals `version`. */
  subs: Subscription[];
  version: number;
}

/** Received topics remembered for dispatch; past this the cache starts over. */
const MAX_DISPATCH = 1024;

interface PendingAck {
  id: number;
  topic: string;
  payload: Uint8Array;
  headers: Record<string, string> | undefined;
  delay: number | undefined;
  resolve: (p: Position | undefined) => void;
  reject: (e: MeshbusError) => void;
}

interface PongWaiter {
  resolve: () => void;
  reject: (e: MeshbusError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** Subscription errors a node reports with correlation = sid. */
const SUB_ERRORS = new Set(['MB_ERR_BAD_TOPIC', 'MB_ERR_TOO_MANY_SUBSCRIPTIONS', 'MB_ERR_PERMISSION_DENIED']);

export interface ClientStats {
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
  reconnects: number;
  /**
   * Events received and not handed to any consumer: for a subscription past
   * its `max`, unsubscribed (or drained) before they arrived, one the client
   * does not know, or slow-consumer drops. Each is also a 'dropped' (or
   * 'slow-consumer') status event.
   */
  dropped: number;
}

/** Why the client discarded a received event (status 'dropped'). */
export type DropReason = 'max-reached' | 'unsubscribed' | 'unknown-subscription' | 'no-subscriber';

/** Subscriptions ended recently, by sid: events still in flight for them are counted against them. */
const MAX_ENDED = 1024;

/**
 * Bytes kept free in the extension-size check for the reply topic of a
 * request (`_INBOX.<client id>.<n>`), whatever the node: so a request that
 * passes the check offline also fits once the inbox is known.
 */
const REPLY_RESERVE = 128;

/**
 * Test seam: called at each step of attaching a connection (see attach());
 * tests set it to make a step throw. Not exported from the package entries.
 * @internal
 */
export const attachFaults: { hook: ((client: Client, step: AttachStep, index: number) => void) | undefined } = { hook: undefined };
/** @internal */
export type AttachStep = 'welcome' | 'sub' | 'outbox' | 'request' | 'ack' | 'heartbeat' | 'connected';

/**
 * The meshbus protocol client: platform-free, the transports are injected.
 * Create it with `connect()` (from `@meshbus/sdk` in Node, or the core entry
 * with your own transport factory).
 */
export class Client implements SubscriptionOwner, Responder {
  private state: State = 'connecting';
  private conn: Connection | undefined;
  private opening: Connection | undefined;
  /** The connection open() is attaching (see open()'s catch). */
  private attached: Connection | undefined;
  private serverInfo: ServerInfo | undefined;
  private readonly pool: ServerPool;
  private readonly backoff: Backoff;
  private readonly transport: TransportFactory;
  private readonly outbox: Outbox | undefined;
  private readonly emitter = new Emitter<{ status: Status }>();
  private readonly statusIterators = new Set<QueuedIterator<Status>>();
  private readonly subs = new Map<number, Subscription>();
  /** Plain (non-queue) subscriptions by pattern, for sid-0 deliveries. */
  private readonly trie = new TopicTrie<Subscription>();
  /** Received topics by header hash: decoded topic and matching subscriptions (see dispatchOf). */
  private readonly dispatch = new Map<number, Dispatch>();
  private readonly requests = new Map<number, PendingRequest>();
  /** Requests made while disconnected, sent on the next connection. */
  private waitingRequests: PendingRequest[] = [];
  private readonly pongs = new Map<number, PongWaiter>();
  /** Publishes waiting for the node's ACK/NACK (publish with `ack`), by correlation. */
  private readonly acks = new Map<number, PendingAck>();
  /** Acked publishes made while disconnected, sent on the next connection. */
  private waitingAcks: PendingAck[] = [];
  private heartbeat: Heartbeat | undefined;
  private inboxPrefix = '';
  private inboxSid = 0;
  private lastId = 0;
  private everConnected = false;
  private sleepTimer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;
  /** suspend() was called: no connection wanted until resume(). */
  private suspended = false;
  /** setOnline(false): the platform says there is no network; no attempts until it returns. */
  private offline = false;
  /** Connect loops waiting for suspended/offline to clear. */
  private releaseWaiters: Array<() => void> = [];
  private closeError: MeshbusError | undefined;
  private readonly closedPromise: Promise<MeshbusError | undefined>;
  private resolveClosed!: (e: MeshbusError | undefined) => void;
  private readonly counters: ClientStats = { inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0, reconnects: 0, dropped: 0 };
  /** Subscriptions ended recently (max, unsubscribe, drain), for the events still on their way. */
  private readonly ended = new Map<number, { sub: Subscription; reason: DropReason }>();

  private constructor(
    servers: string | string[],
    private readonly options: CoreConnectOptions,
  ) {
    this.transport = options.transport;
    const list = Array.isArray(servers) ? servers : [servers];
    const transport = this.transport;
    this.pool = new ServerPool(list, {
      randomize: options.randomize,
      ignoreLearned: options.ignoreClusterPeers,
      supports: (u) => {
        try {
          return transport(u) !== undefined;
        } catch {
          return false;
        }
      },
    });
    this.backoff = new Backoff(options.reconnectBackoff);
    const ob = options.outbox;
    this.outbox = ob === false ? undefined : isOutbox(ob) ? ob : new MemoryOutbox(ob ?? {});
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
  }

  /** Connects to the first reachable server; see ConnectOptions for the policy. */
  static async connect(servers: string | string[], options: CoreConnectOptions): Promise<Client> {
    if (!options || typeof options.transport !== 'function') {
      throw new ClientError('MB_ERR_INVALID_ARGUMENT', 'options.transport (a TransportFactory) is required');
    }
    for (const k of ['name', 'token'] as const) {
      const v = options[k];
      if (v !== undefined) {
        if (typeof v !== 'string') throw new ClientError('MB_ERR_INVALID_ARGUMENT', `${k} must be a string`);
        assertWellFormed(v, k);
      }
    }
    const c = new Client(servers, options);
    try {
      await c.connectLoop('initial', false);
    } catch (e) {
      const err = asError(e);
      c.finish(err);
      throw err;
    }
    return c;
  }

  // ---------------------------------------------------------------- public API

  /** What the current node said in WELCOME; undefined while disconnected. */
  get info(): ServerInfo | undefined {
    return this.conn ? this.serverInfo : undefined;
  }
  /** The URL of the node this client is connected to, if any. */
  get server(): string | undefined {
    return this.conn?.server.href;
  }
  get isConnected(): boolean {
    return this.conn !== undefined && (this.state === 'connected' || this.state === 'draining');
  }
  get isClosed(): boolean {
    return this.state === 'closed';
  }
  /** Every server the client knows, including peers learned from nodes. */
  get servers(): string[] {
    return this.pool.list().map((u) => u.href);
  }
  /** Publishes waiting in the outbox. */
  get outboxCount(): number {
    return this.outbox?.count ?? 0;
  }
  stats(): ClientStats {
    return { ...this.counters };
  }

  /** Resolves when the client is closed: undefined after close()/drain(), else the terminal error. */
  closed(): Promise<MeshbusError | undefined> {
    return this.closedPromise;
  }

  /** Adds a status listener; returns a function that removes it. */
  on(type: 'status', listener: (s: Status) => void): () => void {
    return this.emitter.on(type, listener);
  }

  /** Status events from now on as an async iterator; ends when the client closes. */
  status(): AsyncIterableIterator<Status> {
    const it = new QueuedIterator<Status>();
    if (this.state === 'closed') {
      it.end();
      return it;
    }
    this.statusIterators.add(it);
    it.onStop = () => this.statusIterators.delete(it);
    return it;
  }

  /**
   * Publishes an event. Validates the topic and the payload size against the
   * node's limit first (ProtocolError MB_ERR_BAD_TOPIC, SessionError
   * MB_ERR_PAYLOAD_TOO_LARGE). While disconnected the event goes to the
   * outbox, or throws ClientError MB_ERR_OUTBOX_FULL when it is full.
   */
  publish(topic: string, payload: unknown, options: PublishOptions & { ack: true }): Promise<Position | undefined>;
  publish(topic: string, payload?: unknown, options?: PublishOptions): void;
  publish(topic: string, payload?: unknown, options?: PublishOptions): void | Promise<Position | undefined> {
    if (options?.ack || options?.delay !== undefined || options?.at !== undefined) return this.publishAcked(topic, payload, options);
    this.assertUsable();
    const data = toBytes(payload, options?.codec);
    const headers = options?.headers;
    const trace = options?.trace;
    // The same checks online and offline: an entry the outbox accepts can be sent.
    this.checkEvent(topic, data, headers, trace, false);
    const conn = this.conn;
    if (conn && (this.state === 'connected' || this.state === 'draining')) {
      this.sendPub(conn, topic, data, headers, 0, trace);
      return;
    }
    this.enqueue(topic, data, headers, trace);
  }

  /**
   * Subscribes to a pattern (`*` one token, `>` the rest). Returns a
   * Subscription to iterate with `for await`, unless `callback` is given.
   */
  subscribe(pattern: string, options: SubscribeOptions = {}): Subscription {
    this.assertUsable();
    if (this.state === 'draining') throw new ClientError('MB_ERR_CONNECTION_CLOSED', 'client is draining');
    assertPattern(pattern, { maxTopicLength: this.maxTopic });
    if (options.queue !== undefined && (typeof options.queue !== 'string' || options.queue.length === 0 || options.queue.length > 256)) {
      throw new ClientError('MB_ERR_INVALID_ARGUMENT', `queue group must be a non-empty string of at most 256 characters`);
    }
    if (options.queue !== undefined) assertWellFormed(options.queue, 'queue group');
    if (options.slow !== undefined && options.slow !== 'drop' && options.slow !== 'disconnect') {
      throw new ClientError('MB_ERR_INVALID_ARGUMENT', `slow must be 'drop' or 'disconnect', got ${String(options.slow)}`);
    }
    if (options.max !== undefined && !(Number.isInteger(options.max) && options.max > 0)) {
      throw new ClientError('MB_ERR_INVALID_ARGUMENT', `max must be a positive integer, got ${String(options.max)}`);
    }
    const sid = this.nextId();
    const sub = new Subscription(this, sid, pattern, { ...options, codec: options.codec ?? this.options.codec });
    this.subs.set(sid, sub);
    this.ended.delete(sid);
    if (options.queue === undefined && !sub.sequenced) this.trie.add(pattern, sub);
    if (this.conn) this.sendSub(this.conn, sub);
    return sub;
  }

  /**
   * Delivers `msg` to `sub`; once `max` is reached the subscription is
   * removed (the node stops routing to it on its own: SUB carried `max`).
   */
  private deliverTo(sub: Subscription, msg: Msg): void {
    if (!sub.deliver(msg) && !sub.isClosed) this.endSub(sub, 'max-reached', true);
  }

  /**
   * A publish the node acknowledges: resolves once the node accepted it,
   * for a durable topic once Redis has it (with its position); rejects with
   * the NACK's error (StoreError MB_ERR_STORE_UNAVAILABLE when Redis did not
   * take it) or MB_ERR_CONNECTION_CLOSED when the connection dropped first
   * (outcome unknown). `delay` / `at` publish later (durable topics).
   */
  private publishAcked(topic: string, payload: unknown, options: PublishOptions): Promise<Position | undefined> | void {
    this.assertUsable();
    const data = toBytes(payload, options.codec);
    this.checkEvent(topic, data, options.headers, undefined, false);
    let delay = options.delay;
    if (options.at !== undefined) delay = Math.max(0, Math.round((typeof options.at === 'number' ? options.at : options.at.getTime()) - Date.now()));
    if (delay !== undefined && !(Number.isInteger(delay) && delay >= 0)) throw new ClientError('MB_ERR_INVALID_ARGUMENT', `delay must be a non-negative integer (ms), got ${String(delay)}`);
    const p: PendingAck = { id: 0, topic, payload: data, headers: options.headers, delay, resolve: () => {}, reject: () => {} };
    const promise = new Promise<Position | undefined>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
    });
    const conn = this.conn;
    if (conn && (this.state === 'connected' || this.state === 'draining')) this.sendAcked(conn, p);
    else this.waitingAcks.push(p);
    if (options.ack) return promise;
    promise.catch((e: unknown) => this.emit({ type: 'error', error: asError(e) }));
  }

  private sendAcked(conn: Connection, p: PendingAck): void {
    p.id = this.nextId();
    this.acks.set(p.id, p);
    const ext: Extension = {};
    if (p.headers) ext.headers = p.headers;
    if (p.delay !== undefined && p.delay > 0) ext.delay = p.delay;
    conn.sendEvent({ type: FrameType.PUB, topic: p.topic, payload: p.payload, ext, correlation: p.id, flags: Flags.ACK_REQUESTED });
    this.counters.outMsgs++;
    this.counters.outBytes += p.payload.length;
  }

  /** @internal ACKs (ok) or NACKs a durable queue delivery. */
  settle(correlation: number, ok: boolean, reason?: string): void {
    const conn = this.conn;
    if (!conn) return; // the node fails the delivery when the connection drops; the job is retried
    if (ok) conn.sendFrame({ type: FrameType.ACK, correlation });
    else conn.sendFrame({ type: FrameType.NACK, correlation, payload: encodeBody({ code: 9001, message: reason ?? 'handler failed' }) });
  }

  private onAck(f: Frame): void {
    const id = f.correlation;
    const p = this.acks.get(id);
    if (p) {
      this.acks.delete(id);
      if (f.type === FrameType.NACK) p.reject(errorFrom(f));
      else {
        try {
          p.resolve(decodePubAck(f.payload));
        } catch {
          p.resolve(undefined);
        }
      }
      return;
    }
    const sub = this.subs.get(id);
    if (sub && f.type === FrameType.ACK && f.payloadLen > 0) {
      let body;
      try {
        body = decodeSubAck(f.payload);
      } catch (e) {
        this.emit({ type: 'error', error: asError(e), sid: id });
        return;
      }
      sub.recovered = body.recovered;
      sub.position = { epoch: body.epoch, offset: body.offset };
      this.emit({ type: 'recovery', sid: id, pattern: sub.pattern, recovered: body.recovered, position: { ...sub.position } });
    }
  }

  /**
   * Sends a request and resolves with the first reply. Rejects at once with
   * SessionError MB_ERR_NO_RESPONDERS when nothing subscribes to the topic,
   * with ClientError MB_ERR_TIMEOUT after `timeout` ms. A request made while
   * disconnected is sent on reconnect if its deadline has not passed; one
   * in flight when the connection drops is rejected (MB_ERR_CONNECTION_CLOSED).
   */
  request(topic: string, payload?: unknown, options: RequestOptions = {}): Promise<Msg> {
    try {
      this.assertUsable();
      const data = toBytes(payload, options.codec);
      this.checkEvent(topic, data, options.headers, undefined, true);
      const timeout = options.timeout ?? this.options.requestTimeout ?? 5000;
      if (!(timeout > 0)) throw new ClientError('MB_ERR_INVALID_ARGUMENT', `timeout must be > 0, got ${timeout}`);
      return new Promise<Msg>((resolve, reject) => {
        const req: PendingRequest = {
          id: 0,
          topic,
          payload: data,
          headers: options.headers,
          codec: options.replyCodec ?? this.options.codec,
          resolve,
          reject,
          timer: setTimeout(() => {
            this.forgetRequest(req);
            reject(new ClientError('MB_ERR_TIMEOUT', `no reply on "${topic}" within ${timeout} ms`));
          }, timeout),
        };
        const conn = this.conn;
        if (conn && (this.state === 'connected' || this.state === 'draining')) this.sendRequest(conn, req);
        else this.waitingRequests.push(req);
      });
    } catch (e) {
      return Promise.reject(asError(e));
    }
  }

  /**
   * Unsubscribes `sub` (same as `sub.unsubscribe()`) at once: events the node
   * routed to it before the UNSUB are counted as dropped (status 'dropped');
   * use `sub.drain()` to receive them.
   */
  unsubscribe(sub: Subscription): void {
    if (sub.isClosed) return;
    this.endSub(sub, 'unsubscribed', true);
  }

  /**
   * Ends `sub` locally and (with `unsub`) tells the node; remembers it so
   * that events already on their way are counted against it, not lost silently.
   */
  private endSub(sub: Subscription, reason: DropReason, unsub: boolean, error?: MeshbusError): void {
    this.removeSub(sub);
    if (unsub && this.conn) this.conn.sendFrame({ type: FrameType.UNSUB, correlation: sub.sid });
    if (this.ended.size >= MAX_ENDED) this.ended.delete(this.ended.keys().next().value!);
    this.ended.set(sub.sid, { sub, reason });
    sub.end(error);
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
    const conn = this.conn;
    if (!conn || sub.draining) {
      if (!sub.draining) this.endSub(sub, 'unsubscribed', false);
      return sub.closed.then(() => undefined);
    }
    sub.draining = true;
    conn.sendFrame({ type: FrameType.UNSUB, correlation: sub.sid });
    try {
      await this.flush();
    } catch {
      /* disconnected or closed: the node has dropped the subscription with the connection */
    }
    if (!sub.isClosed) this.endSub(sub, 'unsubscribed', false);
  }

  /**
   * Round trip to the node (PING → PONG). When it resolves, the node has
   * processed every frame sent before. Rejects with MB_ERR_CONNECTION_CLOSED
   * when disconnected, MB_ERR_TIMEOUT after `timeout` ms (default requestTimeout).
   */
  flush(timeout = this.options.requestTimeout ?? 5000): Promise<void> {
    const conn = this.conn;
    if (!conn || this.state === 'closed') {
      return Promise.reject(new ClientError('MB_ERR_CONNECTION_CLOSED', this.state === 'closed' ? 'client is closed' : 'not connected'));
    }
    return new Promise<void>((resolve, reject) => {
      const id = this.nextId();
      const w: PongWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.pongs.delete(id);
          reject(new ClientError('MB_ERR_TIMEOUT', `no PONG within ${timeout} ms`));
        }, timeout),
      };
      this.pongs.set(id, w);
      conn.sendFrame({ type: FrameType.PING, correlation: id });
    });
  }

  /**
   * Graceful stop: unsubscribes everything, waits until the node has
   * processed that (events already on the way are still delivered), ends
   * the subscriptions, then closes. Publishes remain allowed until the close.
   */
  async drain(): Promise<void> {
    if (this.state === 'closed' || this.state === 'draining') return this.closedPromise.then(() => undefined);
    const conn = this.conn;
    if (!conn) return this.close();
    this.state = 'draining';
    for (const sub of this.subs.values()) {
      sub.draining = true;
      conn.sendFrame({ type: FrameType.UNSUB, correlation: sub.sid });
    }
    if (this.inboxSid) conn.sendFrame({ type: FrameType.UNSUB, correlation: this.inboxSid });
    try {
      await this.flush();
    } catch {
      /* closing anyway */
    }
    for (const sub of [...this.subs.values()]) this.endSub(sub, 'unsubscribed', false);
    await this.close();
  }

  /** Closes now: pending requests and flushes are rejected (MB_ERR_CONNECTION_CLOSED), subscriptions end. */
  async close(): Promise<void> {
    if (this.state !== 'closed') {
      const conn = this.conn;
      if (conn) {
        conn.sendFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 0, reason: 'client closing' }) });
      }
      this.finish(undefined);
    }
    await this.closedPromise;
  }

  /**
   * Checks the connection now: pings and declares it dead (reconnecting)
   * unless something arrives within `timeout` ms. Call it when the app
   * comes to the foreground, the network comes back, or the page becomes
   * visible: the socket may be silently dead.
   */
  checkLiveness(timeout?: number): void {
    this.heartbeat?.probe(timeout);
  }

  /**
   * Drops the connection on purpose and makes no attempt to reconnect until
   * resume(): subscriptions, the outbox and waiting requests are kept
   * (publishes go to the outbox). For an app moving to the background.
   */
  suspend(): void {
    if (this.state === 'closed' || this.suspended) return;
    this.suspended = true;
    this.opening?.close(new ClientError('MB_ERR_CONNECTION_CLOSED', 'client suspended'));
    const conn = this.conn;
    if (conn) {
      conn.sendFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 0, reason: 'client suspended' }) });
      conn.close(new ClientError('MB_ERR_CONNECTION_CLOSED', 'client suspended'));
    }
  }

  /**
   * Ends suspend(): reconnects now, without a backoff delay (getToken() is
   * called for the new connection, so the token is fresh). If the connection
   * was kept, probes it instead (checkLiveness).
   */
  resume(): void {
    if (this.state === 'closed') return;
    if (!this.suspended) {
      if (this.conn) this.checkLiveness();
      return;
    }
    this.suspended = false;
    this.releaseHold();
  }

  get isSuspended(): boolean {
    return this.suspended;
  }

  /**
   * What the platform says about the network (browser online/offline,
   * React Native NetInfo). Offline: reconnect attempts pause (no storm while
   * there is no network; the current connection, if any, is left to the
   * heartbeat). Back online: reconnect now, or probe the current connection,
   * which may have died with the old network.
   */
  setOnline(online: boolean): void {
    if (this.state === 'closed' || this.offline === !online) {
      if (online && this.conn && !this.suspended) this.checkLiveness();
      return;
    }
    this.offline = !online;
    if (!online) return;
    if (this.conn) this.checkLiveness();
    this.releaseHold();
  }

  private get held(): boolean {
    return this.suspended || this.offline;
  }

  private releaseHold(): void {
    if (this.held) return;
    for (const w of this.releaseWaiters.splice(0)) w();
    // A loop sleeping between attempts tries now.
    const wake = this.wake;
    this.wake = undefined;
    if (this.sleepTimer !== undefined) clearTimeout(this.sleepTimer);
    this.sleepTimer = undefined;
    wake?.();
  }

  // ---------------------------------------------------------- owner callbacks

  /** @internal */
  slowConsumer(sub: Subscription, first: boolean): void {
    this.counters.dropped++;
    if (!first) return;
    this.emit({ type: 'slow-consumer', source: 'client', sid: sub.sid, pattern: sub.pattern, dropped: sub.dropped, pending: sub.pending });
  }

  /** @internal */
  callbackFailed(sub: Subscription, error: unknown): void {
    const e = isMeshbusError(error) ? error : new ClientError('MB_ERR_INVALID_ARGUMENT', `subscription callback threw: ${String((error as Error)?.message ?? error)}`, { cause: error });
    this.emit({ type: 'error', error: e, sid: sub.sid });
  }

  /** @internal Answers a request (Msg.respond). */
  respond(reply: string, correlation: number, payload: unknown, options?: PublishOptions): void {
    this.assertUsable();
    const data = toBytes(payload, options?.codec);
    this.checkEvent(reply, data, options?.headers, options?.trace, false);
    const conn = this.conn;
    if (conn) this.sendPub(conn, reply, data, options?.headers, correlation, options?.trace);
    // No outbox for replies: the requester's inbox is tied to its connection.
    else throw new ClientError('MB_ERR_CONNECTION_CLOSED', 'not connected; the reply cannot be delivered later');
  }

  // ------------------------------------------------------------ connecting

  private async connectLoop(kind: 'initial' | 'reconnect', immediate: boolean): Promise<void> {
    const max = this.options.maxReconnectAttempts ?? Infinity;
    const firstRound = this.pool.size;
    let attempt = 0;
    let lastError: MeshbusError | undefined;
    for (;;) {
      if (this.state === 'closed') throw this.closeError ?? new ClientError('MB_ERR_CONNECTION_CLOSED', 'client is closed');
      if (this.held) {
        // Suspended or offline: no attempt until released, then one at once with a fresh backoff.
        await new Promise<void>((r) => this.releaseWaiters.push(r));
        if ((this.state as State) === 'closed') throw this.closeError ?? new ClientError('MB_ERR_CONNECTION_CLOSED', 'client is closed');
        if (kind === 'reconnect') {
          attempt = 0;
          immediate = true;
        }
        continue;
      }
      let delay: number;
      if (kind === 'initial') {
        if (attempt >= firstRound && !this.options.waitOnFirstConnect) {
          throw new ClientError('MB_ERR_CONNECT_FAILED', `${lastError?.message ?? 'no server reachable'}`, { cause: lastError });
        }
        if (attempt - firstRound >= max) throw new ClientError('MB_ERR_CONNECT_FAILED', `gave up after ${attempt} attempts`, { cause: lastError });
        delay = attempt < firstRound ? 0 : this.backoff.delay(attempt - firstRound);
      } else {
        if (attempt >= max) throw new ClientError('MB_ERR_CONNECT_FAILED', `gave up after ${attempt} reconnect attempts`, { cause: lastError });
        delay = attempt === 0 && immediate ? 0 : this.backoff.delay(attempt);
      }
      const server = this.pool.next();
      attempt++;
      if (kind === 'reconnect' || delay > 0) this.emit({ type: 'reconnecting', attempt, delay, server: server.href });
      if (delay > 0) await this.sleep(delay);
      if ((this.state as State) === 'closed') throw this.closeError ?? new ClientError('MB_ERR_CONNECTION_CLOSED', 'client is closed');
      if (this.held) continue;
      try {
        await this.open(server);
        return;
      } catch (e) {
        lastError = asError(e);
        if (isTerminal(lastError, this.options)) throw lastError;
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.sleepTimer = setTimeout(() => {
        this.sleepTimer = undefined;
        this.wake = undefined;
        resolve();
      }, ms);
    });
  }

  private async open(server: ServerUrl): Promise<void> {
    const transport = this.transport(server);
    if (!transport) throw new ClientError('MB_ERR_CONNECT_FAILED', `no transport for ${server.href}`);
    let token = this.options.token;
    if (this.options.getToken) {
      try {
        token = (await this.options.getToken()) ?? undefined;
      } catch (e) {
        throw new ClientError('MB_ERR_CONNECT_FAILED', `getToken failed: ${String((e as Error)?.message ?? e)}`, { cause: e });
      }
    }
    if (token !== undefined) {
      if (typeof token !== 'string') throw new ClientError('MB_ERR_CONNECT_FAILED', 'getToken must return a string or undefined');
      const bad = safely(() => assertWellFormed(token!, 'token from getToken'));
      if (bad) throw new ClientError('MB_ERR_CONNECT_FAILED', bad.message, { cause: bad });
    }
    const hello: HelloBody = { v: [MIN_VERSION, MAX_VERSION], lang: CLIENT_LANG };
    if (token !== undefined) hello.token = token;
    if (this.options.name !== undefined) hello.name = this.options.name;
    if (this.options.echo !== undefined) hello.echo = this.options.echo;
    const conn = new Connection(server, transport, this.handlers);
    this.opening = conn;
    try {
      const welcome = await conn.open(hello, this.options.connectTimeout ?? 5000);
      if (this.state === 'closed') throw this.closeError ?? new ClientError('MB_ERR_CONNECTION_CLOSED', 'client is closed');
      if (!conn.isOpen) throw conn.error ?? new ClientError('MB_ERR_CONNECTION_CLOSED', `${server.href} closed after WELCOME`);
      this.attach(conn, welcome);
    } catch (e) {
      // attach() guards each step; this is the net under it and under the
      // handshake. The client never keeps a connection the loop counts as
      // failed (it would open another one beside it): let go of it first,
      // so its close does not start a second reconnect loop, then close it.
      const err = asError(e);
      if (this.conn === conn) {
        this.detach();
        this.failInFlight(new ClientError('MB_ERR_CONNECTION_CLOSED', `connection to ${server.href} given up while attaching: ${err.message}`, { cause: err }));
      } else if (this.attached === conn) {
        // It was attached and dropped meanwhile: its close started the reconnect loop already.
        this.emit({ type: 'error', error: err });
        return;
      }
      conn.close(err);
      throw err;
    } finally {
      if (this.opening === conn) this.opening = undefined;
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
    hook?.(this, 'welcome', 0);
    const reconnected = this.everConnected;
    this.serverInfo = {
      server: conn.server.href,
      version: w.v,
      node: w.node,
      client: w.client,
      maxPayload: w.maxPayload,
      maxTopic: w.maxTopic,
      ping: w.ping,
      peers: [...w.peers],
    };
    this.conn = conn;
    this.attached = conn;
    if (reconnected) this.counters.reconnects++;
    this.everConnected = true;
    this.inboxPrefix = `_INBOX.${w.client}.`;
    this.inboxSid = 0;
    const learned = safely(() => this.pool.learn(w.peers));
    if (learned) this.emit({ type: 'error', error: learned });
    let i = 0;
    for (const sub of [...this.subs.values()]) {
      if (sub.draining) {
        // Its UNSUB went to the old connection; nothing more will come for it.
        this.endSub(sub, 'unsubscribed', false);
        continue;
      }
      const err = safely(() => {
        hook?.(this, 'sub', i++);
        this.sendSub(conn, sub);
      });
      if (err) {
        this.endSub(sub, 'unsubscribed', false, err);
        this.emit({ type: 'error', error: err, sid: sub.sid });
      }
    }
    // The outbox goes out before anything published from now on: order is kept.
    const flushed = this.flushOutbox(conn);
    const waiting = this.waitingRequests;
    this.waitingRequests = [];
    i = 0;
    for (const r of waiting) {
      if (!conn.isOpen) {
        this.waitingRequests.push(r);
        continue;
      }
      const err = safely(() => {
        hook?.(this, 'request', i++);
        this.sendRequest(conn, r);
      });
      if (err) {
        this.forgetRequest(r);
        r.reject(err);
      }
    }
    const acked = this.waitingAcks;
    this.waitingAcks = [];
    i = 0;
    for (const p of acked) {
      if (!conn.isOpen) {
        this.waitingAcks.push(p);
        continue;
      }
      const err = safely(() => {
        hook?.(this, 'ack', i++);
        this.sendAcked(conn, p);
      });
      if (err) {
        if (this.acks.get(p.id) === p) this.acks.delete(p.id);
        p.reject(err);
      }
    }
    if (this.conn !== conn) return; // dropped during the attach: the reconnect loop has taken over
    if (this.state !== 'draining') this.state = 'connected';
    const interval = this.options.pingInterval ?? (w.ping > 0 ? w.ping : 20_000);
    const hb = safely(() => {
      hook?.(this, 'heartbeat', 0);
      this.heartbeat = new Heartbeat(
        { interval, maxOut: this.options.maxPingOut ?? 2, wakeTimeout: this.options.wakeTimeout ?? 2000 },
        {
          lastReceived: () => conn.lastReceived,
          receivedCount: () => conn.receivedCount,
          ping: () => conn.sendFrame({ type: FrameType.PING, correlation: this.nextId() }),
          dead: (e) => conn.close(e),
        },
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
      hook?.(this, 'connected', 0);
      this.emit({ type: 'connected', server: conn.server.href, info: this.serverInfo!, reconnected });
      if (flushed > 0) this.emit({ type: 'outbox-flushed', count: flushed });
    });
    if (done) this.emit({ type: 'error', error: done });
  }

  /**
   * Sends the outbox on `conn`, oldest first; returns how many were sent. An
   * entry the node cannot take (e.g. its payload exceeds this node's limit)
   * gets an 'error' status naming it; when the connection drops meanwhile,
   * the rest goes back to the outbox.
   */
  private flushOutbox(conn: Connection): number {
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
      // Each entry is handed to the transport before the next: an entry is
      // either taken by the transport, refused with a status, or put back.
      if (conn.isOpen) {
        err = safely(() => {
          hook?.(this, 'outbox', i);
          this.checkEvent(e.topic, e.payload, e.headers, e.trace, false);
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
      if (err) this.emit({ type: 'error', error: err, entry: e });
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

  private readonly handlers: ConnectionHandlers = {
    frame: (conn, f) => this.onFrame(conn, f),
    problem: (_conn, e) => this.emit({ type: 'error', error: e }),
    closed: (conn, error) => this.onConnectionClosed(conn, error),
  };

  private onConnectionClosed(conn: Connection, error: MeshbusError | undefined): void {
    if (conn !== this.conn) return;
    this.detach();
    const lost = new ClientError('MB_ERR_CONNECTION_CLOSED', `connection to ${conn.server.href} lost${error ? `: ${error.message}` : ''}`, { cause: error });
    this.failInFlight(lost);
    if ((this.state as State) === 'closed') return;
    this.emit({ type: 'disconnected', server: conn.server.href, ...(error ? { error } : {}) });
    if (this.state === 'draining' || this.options.reconnect === false) {
      this.finish(error);
      return;
    }
    if (error && isTerminal(error, this.options)) {
      this.finish(error);
      return;
    }
    this.state = 'reconnecting';
    const immediate = error?.code === 'MB_ERR_DRAINING';
    this.connectLoop('reconnect', immediate).catch((e: unknown) => {
      if (this.state !== 'closed') this.finish(asError(e));
    });
  }

  // ------------------------------------------------------------- receiving

  private onFrame(conn: Connection, f: Frame): void {
    switch (f.type) {
      case FrameType.PUB:
      case FrameType.REQ:
        this.onEvent(f);
        return;
      case FrameType.PING:
        conn.sendFrame({ type: FrameType.PONG, correlation: f.correlation });
        return;
      case FrameType.PONG: {
        const w = this.pongs.get(f.correlation);
        if (w) {
          this.pongs.delete(f.correlation);
          clearTimeout(w.timer);
          w.resolve();
        }
        return;
      }
      case FrameType.ERROR:
        this.onError(conn, f.correlation, errorFrom(f));
        return;
      case FrameType.ACK:
      case FrameType.NACK:
        this.onAck(f);
        return;
      case FrameType.GOODBYE:
        this.onGoodbye(conn, f);
        return;
      default:
        // WELCOME again, ACK/NACK without a request for them, cluster frames: not for this client.
        return;
    }
  }

  private onEvent(f: Frame): void {
    let d: Dispatch;
    let ext: Extension | undefined;
    try {
      d = this.dispatchOf(f);
      ext = f.ext;
    } catch (e) {
      this.emit({ type: 'error', error: asError(e) });
      return;
    }
    const topic = d.topic;
    this.counters.inMsgs++;
    this.counters.inBytes += f.payloadLen;
    const sid = f.sid;
    if (sid !== 0) {
      const sub = this.subs.get(sid);
      if (sub) this.deliverTo(sub, new Msg(f, topic, ext, this, sub.codec));
      // A durable job dropped here is not settled: the node redelivers it after its ack timeout.
      else this.dropped(sid, topic);
      return;
    }
    // A reply is handed to its request (a late one, after the timeout, is
    // ignored: the timeout was the report); it also reaches any subscription matching it.
    let handed = 0;
    if (this.inboxPrefix && topic.startsWith(this.inboxPrefix)) {
      this.onReply(f, topic, ext);
      handed++;
    }
    const trie = this.trie;
    if (d.version !== trie.version) {
      const subs: Subscription[] = [];
      trie.match(topic, (sub) => subs.push(sub));
      d.subs = subs;
      d.version = trie.version;
    }
    const subs = d.subs;
    let msg: Msg | undefined;
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]!;
      if (sub.isClosed) continue;
      msg ??= new Msg(f, topic, ext, this, undefined);
      this.deliverTo(sub, sub.codec === undefined ? msg : new Msg(f, topic, ext, this, sub.codec));
      handed++;
    }
    if (handed === 0) this.dropped(0, topic);
  }

  /**
   * Counts and reports an event nobody here takes: for a subscription that
   * ended (max reached, unsubscribed) it counts against that subscription;
   * sid 0 with no local match happens when the UNSUB crossed the event.
   */
  private dropped(sid: number, topic: string): void {
    this.counters.dropped++;
    const gone = sid !== 0 ? this.ended.get(sid) : undefined;
    if (gone) {
      gone.sub.dropped++;
      this.emit({ type: 'dropped', reason: gone.reason, sid, pattern: gone.sub.pattern, topic, count: gone.sub.dropped });
    } else {
      this.emit({ type: 'dropped', reason: sid !== 0 ? 'unknown-subscription' : 'no-subscriber', sid, topic, count: this.counters.dropped });
    }
  }

  /**
   * The topic of a received event and its local subscribers, cached by the
   * header's topic hash and confirmed against the topic bytes: no UTF-8
   * decode and no trie walk per event. The subscriber list is recomputed when
   * the trie changed (subscribe / unsubscribe). Reply topics are not cached.
   */
  private dispatchOf(f: Frame): Dispatch {
    const hash = f.topicHash;
    const len = f.topicLen;
    const d = this.dispatch.get(hash);
    if (d !== undefined && d.bytes.length === len) {
      const b = f.buf;
      const s = f.topicStart;
      const t = d.bytes;
      let i = 0;
      while (i < len && b[s + i] === t[i]) i++;
      if (i === len) return d;
    }
    const topic = f.topic;
    const e: Dispatch = { bytes: f.topicBytes.slice(), topic, subs: [], version: -1 };
    if (this.inboxPrefix && topic.startsWith(this.inboxPrefix)) return e;
    if (this.dispatch.size >= MAX_DISPATCH) this.dispatch.clear();
    this.dispatch.set(hash, e);
    return e;
  }

  private onReply(f: Frame, topic: string, ext: Extension | undefined): void {
    const id = Number(topic.slice(this.inboxPrefix.length));
    const req = this.requests.get(id);
    if (!req) return;
    this.forgetRequest(req);
    req.resolve(new Msg(f, topic, ext, this, req.codec));
  }

  private onError(conn: Connection, correlation: number, err: MeshbusError): void {
    if (correlation !== 0) {
      const req = this.requests.get(correlation);
      if (req) {
        this.forgetRequest(req);
        req.reject(err);
        if (!err.fatal) return;
      }
      const sub = this.subs.get(correlation);
      if (sub && err.num === 2040) {
        // MB_ERR_TOO_MANY_REPLAYS: the node bounds history replays per connection (SPEC §15.3); ask again
        // shortly (on this connection: an ended one ignores it, and a reconnect resubscribes anyway).
        setTimeout(() => this.subs.has(sub.sid) && this.sendSub(conn, sub), 300);
        return;
      }
      if (sub && SUB_ERRORS.has(err.code)) {
        this.endSub(sub, 'unsubscribed', false, err);
        this.emit({ type: 'error', error: err, sid: sub.sid });
        return;
      }
    }
    if (err.code === 'MB_ERR_SLOW_CONSUMER') this.emit({ type: 'slow-consumer', source: 'node', error: err });
    else if (!err.fatal) this.emit({ type: 'error', error: err });
    if (err.fatal) conn.close(err);
  }

  private onGoodbye(conn: Connection, f: Frame): void {
    let err: MeshbusError;
    try {
      const g = decodeGoodbye(f.payload);
      err = errorFromCode(codeFromNumber(g.code), g.reason);
      if (g.reconnect && g.reconnect.length > 0) {
        this.pool.learn(g.reconnect);
        // Go to the first redirect target this client can use.
        for (const u of g.reconnect) {
          const href = safeHref(u);
          if (href !== undefined && this.pool.list().some((s) => s.href === href)) {
            this.pool.prefer(href);
            break;
          }
        }
      }
    } catch (e) {
      err = asError(e);
    }
    this.pool.avoid(conn.server.href);
    conn.close(err);
  }

  // --------------------------------------------------------------- sending

  private sendPub(conn: Connection, topic: string, payload: Uint8Array, headers: Record<string, string> | undefined, correlation: number, trace?: string): void {
    if (trace !== undefined) {
      conn.sendEvent({ type: FrameType.PUB, topic, payload, ext: { headers, trace }, correlation, flags: Flags.TRACE });
    } else {
      conn.sendEvent({ type: FrameType.PUB, topic, payload, ext: headers ? { headers } : undefined, correlation });
    }
    this.counters.outMsgs++;
    this.counters.outBytes += payload.length;
  }

  private sendSub(conn: Connection, sub: Subscription): void {
    const body: SubBody = {};
    if (sub.options.queue !== undefined) body.q = sub.options.queue;
    // The node stops routing after this many (a queue group then picks other members); after a reconnect, what is left.
    if (sub.options.max !== undefined) body.max = Math.max(1, sub.options.max - sub.received);
    if (sub.options.slow !== undefined) body.slow = sub.options.slow;
    // Resume from the last position seen (after a reconnect, on any node), or "from now".
    if (sub.sequenced) body.since = sub.position ? [sub.position.epoch, sub.position.offset] : ['', 0];
    if (sub.options.durable) body.durable = true;
    if (sub.options.latest === false) body.latest = false;
    const payload = Object.keys(body).length > 0 ? encodeBody(body) : undefined;
    conn.sendFrame({ type: FrameType.SUB, topic: sub.pattern, correlation: sub.sid, payload });
  }

  private sendRequest(conn: Connection, req: PendingRequest): void {
    if (this.inboxSid === 0) {
      this.inboxSid = this.nextId();
      conn.sendFrame({ type: FrameType.SUB, topic: `${this.inboxPrefix}>`, correlation: this.inboxSid });
    }
    req.id = this.nextId();
    this.requests.set(req.id, req);
    const ext: Extension = { reply: `${this.inboxPrefix}${req.id}` };
    if (req.headers) ext.headers = req.headers;
    conn.sendEvent({ type: FrameType.REQ, topic: req.topic, payload: req.payload, ext, correlation: req.id });
    this.counters.outMsgs++;
    this.counters.outBytes += req.payload.length;
  }

  private enqueue(topic: string, payload: Uint8Array, headers: Record<string, string> | undefined, trace: string | undefined): void {
    const ob = this.outbox;
    if (!ob) throw new ClientError('MB_ERR_CONNECTION_CLOSED', 'not connected and the outbox is disabled');
    const entry: OutboxEntry = { topic, payload, at: Date.now() };
    if (headers) entry.headers = headers;
    if (trace !== undefined) entry.trace = trace;
    try {
      ob.add(entry);
    } catch (e) {
      const err = asError(e);
      if (err instanceof ClientError && err.code === 'MB_ERR_OUTBOX_FULL') {
        this.emit({ type: 'outbox-overflow', error: err, topic, count: ob.count, bytes: ob.bytes });
      }
      throw err;
    }
  }

  // --------------------------------------------------------------- helpers

  private get maxPayload(): number {
    return this.serverInfo?.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  }
  private get maxTopic(): number {
    return this.serverInfo?.maxTopic || DEFAULT_MAX_TOPIC;
  }

  /**
   * Everything that could make an event unsendable, checked where the user
   * calls (publish, request, respond; and again for an outbox entry on the
   * node it is flushed to): the topic (ProtocolError MB_ERR_BAD_TOPIC, which
   * includes a lone surrogate), the payload size against the node's limit
   * (the last node's while offline; SessionError MB_ERR_PAYLOAD_TOO_LARGE),
   * header names and values (strings, well-formed, no `__proto__` name), the trace id, and the
   * size of the extension block they make (ClientError MB_ERR_INVALID_ARGUMENT).
   */
  private checkEvent(topic: string, data: Uint8Array, headers: Record<string, string> | undefined, trace: string | undefined, request: boolean): void {
    const max = this.maxTopic;
    if (typeof topic !== 'string') assertTopic(topic, { maxTopicLength: max });
    else {
      // Validated once per topic string (and node limit), not on every publish.
      // Validated before it is encoded: a lone surrogate is a bad topic, not an encoding failure.
      const t = peekTopicBytes(topic);
      if (t === undefined || t.validFor !== max) {
        assertTopic(topic, { maxTopicLength: max });
        topicBytes(topic).validFor = max;
      }
    }
    if (data.length > this.maxPayload) {
      throw errorFromCode('MB_ERR_PAYLOAD_TOO_LARGE', `${data.length} bytes, the node accepts at most ${this.maxPayload}`);
    }
    // Nodes accept only random 16-hex trace ids (SPEC 10.9): hop records go to _TRACE.<id>, readable by whoever knows it.
    if (trace !== undefined && (typeof trace !== 'string' || !/^[0-9a-f]{16}$/.test(trace))) {
      throw new ClientError('MB_ERR_INVALID_ARGUMENT', `trace id "${String(trace)}" must be 16 lowercase hex digits (random)`);
    }
    if (headers === undefined) return;
    // An upper bound of the block's msgpack size; only a block that might not fit is encoded to know.
    let bound = 16 + (trace !== undefined ? 70 : 0) + (request ? REPLY_RESERVE : 0);
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw new ClientError('MB_ERR_INVALID_ARGUMENT', 'headers must be an object of strings');
    for (const k of Object.keys(headers)) {
      const v = headers[k];
      if (typeof v !== 'string') throw new ClientError('MB_ERR_INVALID_ARGUMENT', `header "${k}" must be a string`);
      assertHeaderName(k);
      assertWellFormed(v, `header "${k}"`);
      bound += utf8Length(k) + utf8Length(v) + 10;
    }
    if (bound > MAX_EXT) {
      const ext: Extension = { headers };
      if (trace !== undefined) ext.trace = trace;
      if (request) ext.reply = 'x'.repeat(REPLY_RESERVE);
      encodeExtension(ext);
    }
  }

  private assertUsable(): void {
    if (this.state === 'closed') throw new ClientError('MB_ERR_CONNECTION_CLOSED', 'client is closed');
  }

  private nextId(): number {
    for (;;) {
      this.lastId = this.lastId >= 0xffffffff ? 1 : this.lastId + 1;
      const id = this.lastId;
      if (!this.subs.has(id) && !this.requests.has(id) && !this.pongs.has(id) && !this.acks.has(id) && id !== this.inboxSid) return id;
    }
  }

  private removeSub(sub: Subscription): void {
    this.subs.delete(sub.sid);
    if (sub.options.queue === undefined) this.trie.remove(sub.pattern, sub);
  }

  private forgetRequest(req: PendingRequest): void {
    clearTimeout(req.timer);
    if (req.id !== 0 && this.requests.get(req.id) === req) this.requests.delete(req.id);
    const i = this.waitingRequests.indexOf(req);
    if (i >= 0) this.waitingRequests.splice(i, 1);
  }

  /** Rejects requests and flushes that were sent on a connection that is gone. */
  private failInFlight(err: MeshbusError): void {
    for (const req of [...this.requests.values()]) {
      this.forgetRequest(req);
      req.reject(err);
    }
    for (const [id, w] of this.pongs) {
      this.pongs.delete(id);
      clearTimeout(w.timer);
      w.reject(err);
    }
    for (const [id, p] of this.acks) {
      this.acks.delete(id);
      p.reject(err);
    }
  }

  private emit(s: Status): void {
    this.emitter.emit('status', s);
    for (const it of this.statusIterators) it.push(s);
  }

  /** Enters the closed state for good. */
  private finish(error: MeshbusError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closeError = error;
    if (this.sleepTimer !== undefined) clearTimeout(this.sleepTimer);
    this.sleepTimer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
    for (const w of this.releaseWaiters.splice(0)) w();
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    const conn = this.conn;
    this.conn = undefined;
    conn?.close();
    this.opening?.close();
    const closedErr = new ClientError('MB_ERR_CONNECTION_CLOSED', 'client is closed', { cause: error });
    this.failInFlight(closedErr);
    for (const req of this.waitingRequests.splice(0)) {
      clearTimeout(req.timer);
      req.reject(closedErr);
    }
    for (const p of this.waitingAcks.splice(0)) p.reject(closedErr);
    for (const sub of [...this.subs.values()]) {
      this.removeSub(sub);
      sub.end(error);
    }
    this.ended.clear();
    const unsent = this.outbox?.clear() ?? 0;
    this.emit(error ? { type: 'closed', error, unsent } : { type: 'closed', unsent });
    for (const it of this.statusIterators) it.end();
    this.statusIterators.clear();
    this.resolveClosed(error);
  }
}

/** Connects a client with an injected transport factory (the platform-free entry). */
export function connect(servers: string | string[], options: CoreConnectOptions): Promise<Client> {
  return Client.connect(servers, options);
}

function isOutbox(v: unknown): v is Outbox {
  return typeof v === 'object' && v !== null && typeof (v as Outbox).add === 'function' && typeof (v as Outbox).takeAll === 'function';
}

/** Errors after which reconnecting would only repeat the failure. */
function isTerminal(e: MeshbusError, o: CoreConnectOptions): boolean {
  if (e.code === 'MB_ERR_AUTH_FAILED') return true;
  if (e.code === 'MB_ERR_TOKEN_EXPIRED') return o.getToken === undefined;
  return false;
}

function asError(e: unknown): MeshbusError {
  if (isMeshbusError(e)) return e;
  return new ClientError('MB_ERR_INVALID_ARGUMENT', String((e as Error)?.message ?? e), { cause: e });
}

/** Runs `fn`; returns what it threw (as a MeshbusError), or undefined. */
function safely(fn: () => void): MeshbusError | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return asError(e);
  }
}

function safeHref(u: string): string | undefined {
  try {
    return parseServer(u).href;
  } catch {
    return undefined;
  }
}

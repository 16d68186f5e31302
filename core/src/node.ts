import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import {
  ERROR_CODES,
  Frame,
  FrameType,
  Flags,
  HEADER_SIZE,
  MAX_EXT,
  OFF,
  ProtocolError,
  SessionError,
  assertTopic,
  checkIngressExtension,
  encodeBody,
  encodeFrame,
  readU64,
  resealHeader,
  topicHash,
  topicProblem,
  writeHex64,
  writeU32,
  writeU64,
  type FrameScanner,
} from '@meshbus/proto';
import { ops, describeOps } from '@meshbus/native';
import { ClientSession } from './client-session.js';
import { logDurabilityOff } from './durable/durability-off.js';
import { resolveDurable, type ResolvedDurable } from './durable/store-config.js';
import { JwtVerifier } from './auth/jwt.js';
import { isTraceId } from './auth/reserved-topics.js';
import { serverTlsOptions } from './tls-config.js';
import { randomId } from './ids.js';
import { jsonLogger, type Logger } from './logger.js';
import { resolveOptions, ConfigError, type NodeOptions, type ResolvedOptions } from './options.js';
import { RoutingTable, type Route } from './routing-table.js';
import { newStats, TopicCounter, type NodeStats } from './stats.js';
import { TcpWire } from './tcp-wire.js';
import type { NodeContext } from './node-context.js';
import type { NodeExtension } from './node-extension.js';
import type { EventSource, Subscriber } from './subscriber.js';

/** Hooks a cluster layer installs. Peers receive events as Subscribers in the routing table, so no event hook is needed. */
export interface NodeHooks {
  /** Client URLs of the other nodes, for WELCOME and GOODBYE. */
  peers?(): string[];
}

/** An event the node publishes itself (HTTP API, internal services). */
export interface LocalPublish {
  /** Application headers of the event. */
  headers?: Record<string, string>;
  /** Reply topic: makes the event a request (REQ). */
  reply?: string;
  correlation?: number;
  /** Who publishes, as routing sees it (never delivered its own event back unless it wants echo); default a node-internal publisher. */
  from?: Subscriber & EventSource;
  /**
   * Trace id, 16 random lowercase hex digits: the event carries the TRACE flag
   * and hop records go to `_TRACE.<trace>`. Any other id: no hop records.
   */
  trace?: string;
}

/** The sender of events the node publishes itself: receives nothing, is never paused. */
const INTERNAL_PUBLISHER: Subscriber & EventSource = {
  kind: 'client',
  uid: 0,
  congested: false,
  echo: true,
  deliver() {},
  addWaiter() {},
  blockOn() {},
  unblock() {},
};

/**
 * One meshbus node: accepts client connections, routes events through its
 * routing table, and shuts down gracefully. Peering lives in @meshbus/cluster,
 * which plugs into `table` and `hooks`.
 */
export class MeshNode implements NodeContext {
  readonly id: string;
  readonly options: ResolvedOptions;
  readonly table = new RoutingTable();
  readonly stats: NodeStats = newStats();
  readonly logger: Logger;
  readonly scanner: FrameScanner;
  readonly maxFrameLength: number;
  readonly startedAt = Date.now();
  readonly hooks: NodeHooks = {};
  /** Events published on this node per topic, bounded (dashboard "top topics"). */
  readonly topTopics = new TopicCounter();
  /** Redis durability through the seam (node-extension.ts), set by listen(); undefined without `durable.redis`. `durabilityOf(node)` types it. */
  get durability(): NodeExtension | undefined {
    return this.extension;
  }
  private extension: NodeExtension | undefined;
  private readonly durableCfg: ResolvedDurable | undefined;
  private readonly sessions = new Set<ClientSession>();
  /** Open client connections per IP address, for maxConnectionsPerIp. */
  private readonly perIp = new Map<string, number>();
  readonly jwt: JwtVerifier | undefined;
  private readonly server: Server;
  private readonly originBytes = new Uint8Array(8);
  /**
   * Sequence of the events this node stamps. It starts from the clock (µs) so a
   * node restarted under the same configured id keeps increasing: peers drop
   * sequences that go back (duplicate and reorder protection), so restarting
   * from 1 would look like old news. Exact below 2^53 for centuries.
   */
  private seq = Date.now() * 1000;
  private timer: ReturnType<typeof setInterval> | undefined;
  private shuttingDown = false;
  private boundPort = 0;

  constructor(options: NodeOptions = {}, scanner: FrameScanner = ops.scanner) {
    const id = options.id ?? randomId();
    this.logger = options.logger ?? jsonLogger('info', { node: id });
    this.options = resolveOptions(options, { id, logger: this.logger });
    this.id = this.options.id;
    writeHex64(this.originBytes, 0, this.id);
    this.scanner = scanner;
    // Validated now (a bad option fails here, like every other), loaded in listen().
    this.durableCfg = resolveDurable(options.durable);
    // Frames larger than the payload limit still decode (and are refused with a
    // typed error, connection kept) up to twice the limit; beyond, the decoder skips them.
    this.maxFrameLength = HEADER_SIZE + this.options.maxTopicLength + MAX_EXT + this.options.maxPayload * 2;
    const tls = this.options.tls;
    if (tls) {
      this.server = createTlsServer({ ...serverTlsOptions(tls), noDelay: true }, (s) => this.accept(s));
      // A failed TLS handshake never becomes a session: count it and move on.
      this.server.on('tlsClientError', () => this.stats.connectionsRefused++);
    } else {
      this.server = createServer({ noDelay: true }, (s) => this.accept(s));
    }
    this.jwt = this.options.jwt ? new JwtVerifier(this.options.jwt) : undefined;
  }

  /** The TCP port clients connect to (known after listen()). */
  get port(): number {
    return this.boundPort;
  }

  get host(): string {
    return this.options.host;
  }

  get connectionCount(): number {
    return this.sessions.size;
  }

  get draining(): boolean {
    return this.shuttingDown;
  }

  connections(): IterableIterator<ClientSession> {
    return this.sessions.values();
  }

  /** Starts listening; rejects with a ConfigError for a port in use or a bad address. */
  async listen(): Promise<this> {
    // ioredis/bullmq load only when configured, before the listener opens (no durable publish unseen).
    if (this.durableCfg && !this.extension) {
      const { Durability } = await import('./durable/durability.js');
      this.extension = new Durability(this, this.durableCfg);
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (e: NodeJS.ErrnoException): void => {
        reject(
          e.code === 'EADDRINUSE'
            ? new ConfigError(`port ${this.options.port} on ${this.options.host} is already in use`)
            : new ConfigError(`cannot listen on ${this.options.host}:${this.options.port}: ${e.message}`),
        );
      };
      this.server.once('error', onError);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    const addr = this.server.address();
    this.boundPort = typeof addr === 'object' && addr ? addr.port : this.options.port;
    const o = this.options;
    const period = Math.max(20, Math.min(o.pingInterval, o.writeDeadline, o.handshakeTimeout, o.maxStall) / 4);
    this.timer = setInterval(() => this.tick(), period);
    this.timer.unref();
    this.logger.info({ host: o.host, port: this.boundPort, scanner: this.scanner.name, bytes: describeOps() }, 'node listening');
    if (this.durability) await this.durability.start();
    else logDurabilityOff(this.logger);
    return this;
  }

  private accept(socket: Socket): void {
    if (this.shuttingDown || this.sessions.size >= this.options.maxConnections) {
      this.stats.connectionsRefused++;
      const code = this.shuttingDown ? 'MB_ERR_DRAINING' : 'MB_ERR_TOO_MANY_CONNECTIONS';
      const body = encodeBody({ code: ERROR_CODES[code].num, message: ERROR_CODES[code].message });
      socket.on('error', () => {});
      socket.end(encodeFrame({ type: FrameType.ERROR, payload: body }));
      return;
    }
    this.attach((events) => new TcpWire(socket, events));
  }

  /**
   * Adds a client connection over any transport: `makeWire` gets the events
   * the session wants to hear. Used for TCP here and by the WebSocket gateway.
   */
  attach(makeWire: (events: import('./wire.js').WireEvents) => import('./wire.js').Wire): ClientSession {
    let session: ClientSession | undefined;
    const wire = makeWire({
      data: (chunk) => session!.onData(chunk),
      drain: () => session!.onDrain(),
      close: () => session!.onClose(),
    });
    session = new ClientSession(wire, this);
    this.sessions.add(session);
    this.stats.connectionsTotal++;
    const ip = ipOf(wire.remote);
    const n = (this.perIp.get(ip) ?? 0) + 1;
    this.perIp.set(ip, n);
    if (n > this.options.maxConnectionsPerIp) {
      this.stats.connectionsRefused++;
      session.fail('MB_ERR_TOO_MANY_CONNECTIONS', `more than ${this.options.maxConnectionsPerIp} connections from ${ip}`);
    }
    return session;
  }

  /** Client URLs of other nodes: the cluster's view when attached, else the configured list. */
  peerUrls(): string[] {
    return this.hooks.peers ? this.hooks.peers() : this.options.peers();
  }

  newClientId(): string {
    return randomId();
  }

  opened(session: ClientSession): void {
    this.logger.debug({ client: session.clientId, remote: session.wire.remote, name: session.name }, 'client connected');
  }

  closed(session: ClientSession): void {
    if (!this.sessions.delete(session)) return;
    const ip = ipOf(session.wire.remote);
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }

  private readonly decodeTopic = (f: Frame): string => {
    const topic = f.topic;
    const problem = topicProblem(topic, false, this.options);
    if (problem) throw new ProtocolError('MB_ERR_BAD_TOPIC', problem);
    if (topicHash(f.topicBytes) !== f.topicHash) throw new ProtocolError('MB_ERR_BAD_HASH', `for topic "${topic}"`);
    return topic;
  };

  publish(from: ClientSession, f: Frame): void {
    const o = this.options;
    if (f.payloadLen > o.maxPayload) {
      from.sendError('MB_ERR_PAYLOAD_TOO_LARGE', f.correlation, `${f.payloadLen} bytes, limit ${o.maxPayload}`);
      return;
    }
    if (f.topicLen === 0 || f.topicLen > o.maxTopicLength) {
      from.sendError('MB_ERR_BAD_TOPIC', f.correlation, `topic of ${f.topicLen} bytes`);
      return;
    }
    let route: Route;
    try {
      // The one check of what a client may carry, before anything routes or stores the event.
      checkIngressExtension(f.extBytes, f.type === FrameType.REQ, 'client');
      route = this.table.routeFrame(f, this.decodeTopic);
    } catch (e) {
      const err = e as ProtocolError;
      if (ERROR_CODES[err.code]?.kind === 'protocol') this.stats.protocolErrors++;
      from.sendError(err.code ?? 'MB_ERR_BAD_TOPIC', f.correlation, err.message);
      return;
    }
    const durable = this.durability === undefined ? null : this.durability.match(f);
    this.stamp(f);
    this.stats.msgsIn++;
    this.stats.bytesIn += f.size;
    this.topTopics.count(f.topicHash, f);
    if (durable !== null) {
      // Stored first, delivered when Redis has it; the ACK waits for the store.
      this.durability!.publish(f, durable, from);
      return;
    }
    const n = this.deliver(f, route, from, false);
    if (n === 0) {
      this.stats.noInterest++;
      if (f.type === FrameType.REQ) from.sendError('MB_ERR_NO_RESPONDERS', f.correlation, `no subscriber for the request`);
    }
    if (f.ackRequested) from.send(encodeFrame({ type: FrameType.ACK, correlation: f.correlation }));
  }

  /**
   * Publishes an event from inside the node: encodes the frame and routes it
   * exactly like a client's PUB (a REQ when `o.reply` is set). Returns how
   * many receivers got it (a peer link counts as one). Throws ProtocolError
   * MB_ERR_BAD_TOPIC / MB_ERR_BAD_EXTENSION or SessionError MB_ERR_PAYLOAD_TOO_LARGE.
   */
  publishLocal(topic: string, payload: Uint8Array, o: LocalPublish = {}): number {
    const max = this.options.maxPayload;
    if (payload.length > max) throw new SessionError('MB_ERR_PAYLOAD_TOO_LARGE', `${payload.length} bytes, limit ${max}`);
    assertTopic(topic, this.options);
    const ext = o.headers !== undefined || o.reply !== undefined || o.trace !== undefined ? { headers: o.headers, reply: o.reply, trace: o.trace } : undefined;
    const type = o.reply !== undefined ? FrameType.REQ : FrameType.PUB;
    const flags = o.trace !== undefined ? Flags.TRACE : 0;
    const bytes = encodeFrame({ type, topic, payload, ext, flags, correlation: o.correlation, timestamp: Date.now() });
    const f = new Frame(bytes, 0, bytes.length);
    // Same ingress rule as a client's PUB/REQ (HTTP callers are clients too).
    checkIngressExtension(f.extBytes, type === FrameType.REQ, 'client');
    const route = this.table.routeFrame(f, this.decodeTopic);
    const durable = this.durability === undefined ? null : this.durability.match(f);
    this.stamp(f);
    this.stats.msgsIn++;
    this.stats.bytesIn += f.size;
    this.topTopics.count(f.topicHash, f);
    const from = o.from ?? INTERNAL_PUBLISHER;
    if (durable !== null) {
      // Durable topics are stored first whoever publishes (HTTP included); receivers get it when Redis has it.
      this.durability!.publish(f, durable, from);
      return route.plain.length + route.groups.length;
    }
    const n = this.deliver(f, route, from, false);
    if (n === 0) this.stats.noInterest++;
    return n;
  }

  /**
   * Delivers an event the durable store accepted (or a delayed one that is
   * due), to local receivers and peers alike, like a fresh publish from `from`.
   */
  deliverAccepted(f: Frame, from: Subscriber & EventSource = INTERNAL_PUBLISHER): number {
    // Leaves now, later than events stamped after it: give it the next sequence so
    // peers see this node's events in increasing order (they drop any that go back).
    writeU64(f.buf, f.start + OFF.SEQ, ++this.seq);
    resealHeader(f.buf, f.start);
    const route = this.table.routeFrame(f, this.decodeTopic);
    const n = this.deliver(f, route, from, false);
    if (n === 0) this.stats.noInterest++;
    return n;
  }

  /**
   * Delivers `f` to the receivers of `route`; returns how many got it.
   * `localOnly`: skip peer receivers (an event that came from a peer in a full mesh).
   */
  deliver(f: Frame, route: Route, from: (Subscriber & EventSource) | undefined, localOnly: boolean): number {
    const tIn = f.traced ? now() : 0;
    const trace: string[] | undefined = f.traced ? [] : undefined;
    let n = 0;
    // A source never gets its own event back over the link it came on; a client only if it wants echo.
    const skip = from && (from.kind === 'peer' || !from.echo) ? from : undefined;
    for (const s of route.plain) {
      if (s === skip || (localOnly && s.kind === 'peer')) continue;
      s.deliver(f, 0);
      if (from && s.congested) from.blockOn(s);
      if (trace) trace.push(s.label ?? s.kind);
      n++;
    }
    const lim = route.limited;
    for (let i = 0; i < lim.length; i++) {
      // Plain subscriptions with a max: the delivery above counts against it (SUB `max`).
      const s = lim[i]!;
      if (s.owner !== skip) s.owner.countDelivery?.(s);
    }
    const sq = route.sequenced;
    for (let i = 0; i < sq.length; i++) {
      // Subscriptions resuming from a durable position: each gets its own in-order delivery.
      const s = sq[i]!;
      if (s.owner === skip) continue;
      s.sequencer!.offer(f);
      if (from && s.owner.congested) from.blockOn(s.owner);
      n++;
    }
    for (const g of route.groups) {
      if (localOnly && g.local.length === 0) continue;
      const m = this.table.pick(g, skip);
      if (!m) continue;
      m.owner.deliver(f, m.sid);
      if (from && m.owner.congested) from.blockOn(m.owner);
      if (trace) trace.push(`${m.owner.label ?? m.owner.kind} (group ${g.name})`);
      n++;
    }
    if (trace) this.reportHop(f, from, tIn, trace);
    return this.countOut(n, f.size);
  }

  /**
   * Message tracing: a node that handles an event with the TRACE flag
   * publishes one hop record (node, time in, time out, where it went) as an
   * event on `_TRACE.<trace id>`, routed through the mesh like any other, so
   * whoever traces subscribes there and sees the path hop by hop. Only for a
   * well-formed (16 hex digit) id, whoever sent the event: nobody else picks
   * the topic the node publishes on (SPEC 10.9, 11.1).
   */
  private reportHop(f: Frame, from: Subscriber | undefined, tIn: number, to: string[]): void {
    let traceId: string | undefined;
    try {
      traceId = f.ext?.trace;
    } catch {
      traceId = undefined;
    }
    // Only a well-formed random id names the record's topic: a sender (a client
    // checked at ingress, or a peer) never picks where the node publishes.
    if (traceId === undefined || !isTraceId(traceId)) return;
    const topic = `_TRACE.${traceId}`;
    const hop: TraceHop = {
      node: this.id,
      name: this.options.name,
      hops: f.hops,
      topic: f.topic,
      from: from?.label ?? from?.kind ?? 'internal',
      in: tIn,
      out: now(),
      to,
    };
    this.stats.traceHops++;
    try {
      this.publishLocal(topic, encodeBody(hop));
    } catch (e) {
      this.logger.warn({ err: String(e) }, 'trace report failed');
    }
  }

  /**
   * Delivers a queue-group event to one member of `group`, local members
   * first (an event a peer handed to this node for one of its groups).
   */
  deliverToGroup(f: Frame, route: Route, group: string, from: (Subscriber & EventSource) | undefined, localOnly: boolean): boolean {
    const tIn = f.traced ? now() : 0;
    for (const g of route.groups) {
      if (g.name !== group || (localOnly && g.local.length === 0)) continue;
      const m = this.table.pick(g, from);
      if (!m) return false;
      m.owner.deliver(f, m.sid);
      if (from && m.owner.congested) from.blockOn(m.owner);
      this.countOut(1, f.size);
      if (f.traced) this.reportHop(f, from, tIn, [`${m.owner.label ?? m.owner.kind} (group ${g.name})`]);
      return true;
    }
    return false;
  }

  private countOut(n: number, size: number): number {
    this.stats.msgsOut += n;
    this.stats.bytesOut += n * size;
    return n;
  }

  /** Gives an event its mesh identity at ingress: this node's id, a node-wide sequence, a timestamp. */
  private stamp(f: Frame): void {
    const b = f.buf;
    const s = f.start;
    b.set(this.originBytes, s + OFF.ORIGIN);
    writeU64(b, s + OFF.SEQ, ++this.seq);
    if (readU64(b, s + OFF.TIMESTAMP) === 0) writeU64(b, s + OFF.TIMESTAMP, Date.now());
    // Only nodes set sid, on queue-group deliveries.
    writeU32(b, s + OFF.SID, 0);
    resealHeader(b, s);
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.sessions) s.tick(now);
  }

  /**
   * Graceful stop: refuse new connections, tell every client to go elsewhere
   * (GOODBYE MB_ERR_DRAINING with the peer list), wait for them to flush and
   * close (at most drainTimeout), then close the listener.
   */
  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.logger.info({ connections: this.sessions.size }, 'node draining');
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const peers = this.peerUrls();
    for (const s of this.sessions) s.goodbye('MB_ERR_DRAINING', 'node shutting down', peers);
    const deadline = Date.now() + this.options.drainTimeout;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const s of this.sessions) s.wire.destroy();
    if (this.timer) clearInterval(this.timer);
    await closed;
    await this.durability?.stop();
    this.logger.info({}, 'node stopped');
  }

  /** Abrupt stop: drop every connection at once (tests, fatal errors). */
  async close(): Promise<void> {
    this.shuttingDown = true;
    if (this.timer) clearInterval(this.timer);
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sessions) s.wire.destroy();
    await closed;
    await this.durability?.stop();
  }
}

/** One node's report about a traced event. */
export interface TraceHop {
  node: string;
  name: string;
  /** Hop count of the event when it reached this node (0 at the origin node). */
  hops: number;
  topic: string;
  /** Where the event came from: "client <id>", "peer <node id>" or "internal". */
  from: string;
  /** Wall-clock ms (with fraction) when routing started and ended on this node. */
  in: number;
  out: number;
  /** Receivers it was handed to: "client <id>", "peer <node id>", with "(group g)" for queue groups. */
  to: string[];
}

/** The address part of "ip:port" (IPv6 addresses contain colons too). */
function ipOf(remote: string): string {
  const i = remote.lastIndexOf(':');
  return i < 0 ? remote : remote.slice(0, i);
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Creates a node and starts listening. */
export async function startNode(options: NodeOptions = {}, scanner?: FrameScanner): Promise<MeshNode> {
  return new MeshNode(options, scanner).listen();
}

import type { Server, Socket } from 'node:net';
import {
  ERROR_CODES,
  FrameType,
  assertPattern,
  errorFrame,
  checkIngressRules,
  encodeFrame,
  writeHex64,
  type Frame,
  type FrameScanner,
} from '@meshbus/proto';
import { ops, describeOps } from '@meshbus/native';
import { ClientSession } from './client-session.js';
import { ClientRegistry } from './client-registry.js';
import { checkedTopicDecoder } from './topic-decoder.js';
import { logDurabilityOff, notDurableRefusal } from './durable/durability-off.js';
import { resolveDurable, type ResolvedDurable } from './durable/store-config.js';
import { JwtVerifier } from './auth/jwt.js';
import { hopLabel, traceClock as now } from './trace-hop.js';
import { reportHop } from './hop-report.js';
import { TraceGuard } from './trace-guard.js';
import { AuthThrottle } from './auth/auth-throttle.js';
import { OtlpExporter } from './otlp-export.js';
import { randomId } from './ids.js';
import { jsonLogger, type Logger } from './logger.js';
import { frameLimit, resolveOptions, type NodeOptions, type ResolvedOptions } from './options.js';
import { InputBudget } from './input-budget.js';
import { listenOn } from './listen.js';
import { raiseHops } from './forward-slab.js';
import { RoutingTable, dropTagOf, outOfScope, type DeliveryScope, type Receivers } from './routing-table.js';
import { DeliveryTimer, newStats, newTimings, TopicCounter, type NodeStats, type NodeTimings } from './stats.js';
import { TcpTransport } from './tcp-transport.js';
import { refuseConnection } from './listener-timeouts.js';
import { clientServer, closeClientPort } from './client-server.js';
import { EventStamp } from './event-stamp.js';
import { PublishRun } from './publish-run.js';
import type { Transport, TransportEvents } from './transport.js';
import type { NodeContext } from './node-context.js';
import { admitted, echoSkip, isLink, takesPayload, type EventSource, type Subscriber } from './subscriber.js';
import { askAnswer, localFrame, type LocalPublish } from './local-publish.js';
import { InternalSubscriber, subscribeInternal, type InternalSubscribeOptions, type InternalSubscription } from './internal-subscriber.js';
import type { NodeExtension } from './node-extension.js';

/** Hooks a cluster layer installs. Peers receive events as Subscribers in the routing table, so no event hook is needed. */
export interface NodeHooks {
  /** Client URLs of the other nodes, for WELCOME and GOODBYE: to a WebSocket session their WebSocket URLs, where they have one. */
  peers?(kind: 'tcp' | 'ws'): string[];
  /** This node's WebSocket URL, set by a gateway on its own port: peers announce it to their WebSocket clients. */
  wsUrl?: string;
}

/** What ingress returns when durability took the event (delivered, acknowledged once stored), or refused it (notDurableRefusal). */
const STORED = -1;
const REFUSED = -2;
const NO_GROUPS: Receivers['groups'] = [];

/** The sender of events the node publishes itself: receives nothing, is never paused. */
const INTERNAL_PUBLISHER = new InternalSubscriber('internal');

/** One meshbus node: accepts client connections, routes events through its routing table, and shuts down gracefully. Peering lives in @meshbus/cluster, which plugs into `table` and `hooks`. */
export class MeshNode implements NodeContext {
  readonly id: string;
  readonly options: ResolvedOptions;
  readonly stats: NodeStats = newStats();
  readonly table = new RoutingTable(this.stats.subscriptionWeight);
  /** Duration observers (delivery, durable writes): no-ops until an exporter, e.g. the HTTP API's /metrics, sets them. */
  readonly timings: NodeTimings = newTimings();
  private readonly deliveryTimer = new DeliveryTimer(this.timings);
  /** A client's events on one topic waiting to be delivered as one range (publish-run.ts); flushRun() delivers them. */
  private readonly run: PublishRun;
  readonly logger: Logger;
  readonly scanner: FrameScanner;
  readonly maxFrameLength: number;
  readonly inputBudget: InputBudget; // unfinished input held, every connection and request together (SPEC 9.5)
  readonly startedAt = Date.now();
  readonly hooks: NodeHooks = {};
  /** Events published on this node per topic, bounded (dashboard "top topics"). */
  readonly topTopics = new TopicCounter();
  /** Trace id owners (trace-guard.ts) and failed authentications per address (auth-throttle.ts): NodeContext. */
  readonly traces: TraceGuard;
  readonly authThrottle: AuthThrottle;
  /** Redis durability through the seam (node-extension.ts), set by listen(); undefined without `durable.redis`. `durabilityOf(node)` types it. */
  get durability(): NodeExtension | undefined {
    return this.extension;
  }
  private extension: NodeExtension | undefined;
  private readonly durableCfg: ResolvedDurable | undefined;
  private readonly sessions = new ClientRegistry();
  readonly jwt: JwtVerifier | undefined;
  readonly otlp: OtlpExporter | undefined; // a span per hop of events carrying a traceparent (otlpEndpoint)
  private readonly server: Server;
  private readonly originBytes = new Uint8Array(8);
  /**
   * Stamps events; its sequence starts from the clock (µs), so a node restarted under the same id keeps increasing:
   * peers drop sequences that go back (duplicate and reorder protection). Exact below 2^53 for centuries.
   */
  private readonly stamper: EventStamp;
  private timer: ReturnType<typeof setInterval> | undefined;
  private shuttingDown = false;
  private boundPort = 0;

  constructor(options: NodeOptions = {}, scanner: FrameScanner = ops.scanner) {
    const id = options.id ?? randomId();
    this.logger = options.logger ?? jsonLogger('info', { node: id });
    this.options = resolveOptions(options, { id, logger: this.logger });
    this.run = new PublishRun(this.stats, this.table, this.options.maxPayload);
    this.decodeTopic = checkedTopicDecoder(this.options);
    this.decodePeerTopic = checkedTopicDecoder({ maxTopicLength: 0xffff, maxTopicDepth: this.options.maxTopicDepth });
    this.id = this.options.id;
    this.traces = new TraceGuard(this.id);
    this.authThrottle = new AuthThrottle(this.options.authThrottle);
    writeHex64(this.originBytes, 0, this.id);
    this.stamper = new EventStamp(this.originBytes, Date.now() * 1000);
    this.scanner = scanner;
    // Validated now (a bad option fails here, like every other), loaded in listen().
    this.durableCfg = resolveDurable(options.durable);
    // Payloads up to twice the limit still decode (refused with a typed error); beyond, skipped (options.ts frameLimit).
    this.maxFrameLength = frameLimit(this.options.maxTopicLength, this.options.maxPayload);
    this.inputBudget = new InputBudget({ limit: this.options.inputBudget, stall: this.options.inputStall });
    this.server = clientServer(this.options, this.stats, this.logger, (s) => this.accept(s));
    this.jwt = this.options.jwt ? new JwtVerifier(this.options.jwt) : undefined;
    this.otlp = this.options.otlpEndpoint ? new OtlpExporter({ endpoint: this.options.otlpEndpoint, closeWaitMs: this.options.drainTimeout }, { id: this.id, name: this.options.name }, this.logger) : undefined;
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
    const o = this.options;
    this.boundPort = await listenOn(this.server, o.port, o.host, { port: '', label: 'clients' });
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
      refuseConnection(socket, errorFrame(code, 0, ERROR_CODES[code].message), this.options.drainTimeout);
      return;
    }
    this.attach((events) => new TcpTransport(socket, events));
  }

  /** Adds a client connection over any transport: `makeTransport` gets the events the session wants to hear. Used for TCP here and by the WebSocket gateway. */
  attach(makeTransport: (events: TransportEvents) => Transport): ClientSession {
    const session = new ClientSession(makeTransport, this);
    const { ip, count } = this.sessions.add(session);
    session.host = ip;
    this.stats.connectionsTotal++;
    if (count > this.options.maxConnectionsPerIp) {
      this.stats.connectionsRefused++;
      session.fail('MB_ERR_TOO_MANY_CONNECTIONS', `more than ${this.options.maxConnectionsPerIp} connections from ${ip}`);
    }
    return session;
  }

  /** Client URLs of other nodes (`kind`: of the session told): the cluster's view when attached, else the configured list. */
  peerUrls(kind: 'tcp' | 'ws' = 'tcp'): string[] {
    return this.hooks.peers ? this.hooks.peers(kind) : this.options.peers();
  }

  newClientId(): string {
    return this.options.nodeIdInClientIds ? this.id + randomId() : randomId();
  }

  flushRun(): void {
    this.run.flush();
  }

  opened(session: ClientSession): void {
    this.logger.debug({ client: session.clientId, remote: session.remote, name: session.name }, 'client connected');
  }

  closed(session: ClientSession): void {
    if (this.sessions.delete(session)) this.traces.release(session);
  }

  /** Topic of an entering event, checked (topic-decoder.ts): the routing table calls it on a cache miss. */
  private readonly decodeTopic: (f: Frame) => string;
  private readonly decodePeerTopic: (f: Frame) => string;

  /**
   * Subscribes a receiver inside the node (HTTP inbox, HTTP trace…) to
   * `pattern` (internal-subscriber.ts subscribeInternal). Throws
   * ProtocolError MB_ERR_BAD_TOPIC for an invalid pattern.
   */
  subscribeInternal(pattern: string, deliver: (frame: Frame, sid: number) => void, o: InternalSubscribeOptions): InternalSubscription {
    assertPattern(pattern, this.options);
    return subscribeInternal(this.table, pattern, deliver, o);
  }

  /**
   * A client's PUB or REQ, already checked by its session (client-limits
   * checkClientEvent). Throws the typed error of a bad topic or hash (the
   * session answers it). Then the publisher hears NO_RESPONDERS (a REQ
   * nobody receives) and its ACK, unless durability took the event (the ACK
   * waits for the store).
   */
  publish(from: ClientSession, f: Frame): void {
    // A PUB without an extension block (no reply, trace or traceparent) may be delivered in a run (publish-run.ts).
    const n = this.ingress(f, from, f.type === FrameType.PUB && f.extLen === 0);
    if (n === STORED || n === REFUSED) return;
    if (n === 0 && f.type === FrameType.REQ) from.sendError('MB_ERR_NO_RESPONDERS', f.correlation, `no subscriber for the request`);
    if (f.ackRequested) from.send(encodeFrame({ type: FrameType.ACK, correlation: f.correlation }));
  }

  /**
   * Publishes an event from inside the node: encodes the frame and routes it exactly like a client's PUB (a REQ when
   * `o.reply` is set). Returns how many receivers got it (a peer link counts as one); on a durable topic, who will once
   * it is stored, whoever publishes (`o.answer`: the store's ACK/NACK to `o.from`). Throws ProtocolError
   * MB_ERR_BAD_TOPIC / MB_ERR_BAD_EXTENSION or SessionError MB_ERR_PAYLOAD_TOO_LARGE.
   */
  publishLocal(topic: string, payload: Uint8Array, o: LocalPublish = {}): number {
    const f = localFrame(topic, payload, o, this.options);
    if (o.answer === true && this.durability?.match(f)) askAnswer(f);
    const n = this.ingress(f, o.from ?? INTERNAL_PUBLISHER);
    if (n === REFUSED) return 0;
    if (n !== STORED) return n;
    const r = this.table.routeFrame(f, this.decodeTopic);
    return r.plain.length + r.groups.length;
  }

  /**
   * The one ingress of an event published on this node (a client's PUB/REQ, an HTTP or internal publish): finds its
   * receivers (a bad topic or hash throws a typed error first), gives it its mesh identity (stamp) and counts it; then
   * an event on a durable topic goes to durability (stored first, delivered when Redis has it: returns STORED), any
   * other is delivered now (returns how many receivers got it). A PUB asking for an ACK or a delay on a topic nothing
   * durable covers is refused instead (NACK/ERROR MB_ERR_NOT_DURABLE to `from`; returns REFUSED).
   */
  private ingress(f: Frame, from: Subscriber & EventSource & { send?(chunk: Uint8Array): void }, mayRun = false): number {
    const version = this.table.version;
    const receivers = this.table.routeFrame(f, this.decodeTopic);
    const durable = this.durability === undefined ? null : this.durability.match(f);
    // An ACK or a delay asked on a topic nothing durable covers: refused, not a silent plain delivery.
    const refusal = notDurableRefusal(f, durable !== null, this.durability !== undefined);
    if (refusal !== undefined) {
      this.run.flush(); // after the deliveries of what `from` published before
      from.send?.(refusal);
      return REFUSED;
    }
    this.admit(f);
    if (durable !== null) {
      this.run.flush();
      this.durability!.publish(f, durable, from);
      return STORED;
    }
    this.deliveryTimer.tick();
    // For links only, hops raised once in place: the event may then go out in a run like a client's delivery.
    const raised = mayRun && receivers.linksOnly && !f.traced && raiseHops(f);
    const n = mayRun ? this.run.add(f, receivers, from, 'all', version, raised) : -1;
    return n >= 0 ? n : this.fanOut(f, receivers, from, raised ? 'raised' : true);
  }

  /**
   * NodeContext.publishRepeat. The checks the event before `f` passed read the same header and topic, or state that changes only outside
   * this chunk's loop; its receivers hold while the table is unchanged (a full run delivered mid-chunk may close a slow receiver).
   */
  publishRepeat(from: ClientSession, f: Frame): boolean {
    if (!this.run.repeats(f, from)) return false;
    this.admit(f);
    this.deliveryTimer.tick();
    if (this.run.raisesHops) raiseHops(f);
    this.run.extend(f);
    return true;
  }

  /** What every event entering here gets: its mesh identity (this node's id, a node-wide sequence, a timestamp) and its counts. */
  private admit(f: Frame): void {
    this.stamper.stamp(f);
    this.stats.msgsIn++;
    this.stats.bytesIn += f.size;
    // Not `_INBOX`/`_TRACE` (never shown, views.ts): reply topics are new at each request (a decode, an entry each).
    if (f.buf[f.topicStart] !== 0x5f /* _ */) this.topTopics.count(f.topicHash, f);
  }

  /**
   * Ingress of an event a peer forwarded (stamped where published): every publisher's extension rules (a durable
   * position allowed), the topic checked within the protocol's length, not maxTopicLength (its clients': the origin
   * checked its own; mixed limits lost longer topics), counted like any event in; returns its receivers (the caller
   * delivers). Malformed: counted in protocolErrors, ProtocolError MB_ERR_BAD_EXTENSION / _TOPIC / _HASH thrown.
   */
  forwardedIngress(f: Frame): Receivers {
    let receivers: Receivers;
    try {
      // f.ext: no view of an empty extension block made per event.
      checkIngressRules(f.ext, f.type === FrameType.REQ, 'peer');
      receivers = this.table.routeFrame(f, this.decodePeerTopic);
    } catch (e) {
      this.stats.protocolErrors++;
      throw e;
    }
    this.stats.msgsIn++;
    this.stats.bytesIn += f.size;
    this.deliveryTimer.tick();
    return receivers;
  }

  /**
   * `deliver` for an event a peer forwarded (`from`: its link), in a run with the ones before it when it can be
   * (publish-run.ts). `receivers`: what forwardedIngress found just before, the table unchanged since.
   */
  deliverForwarded(f: Frame, receivers: Receivers, from: Subscriber & EventSource, scope: DeliveryScope): number {
    const n = f.extLen === 0 && !f.traced ? this.run.add(f, receivers, from, scope, this.table.version) : -1;
    return n >= 0 ? n : this.deliver(f, receivers, from, scope);
  }

  /**
   * Whether a peer's event whose header but for its sequence and timestamp, and topic, repeat the event before it from
   * `from` (the scanner's SCAN_REPEAT with Repeats.UNSTAMPED) joins the run `deliverForwarded` took that event into
   * (PublishRun.repeats): the checks that event passed read the compared bytes. Then the caller checks what reads the
   * rest (the origin's order, by sequence) and calls forwardedRepeat; else it takes the full path.
   */
  repeatsRun(f: Frame, from: Subscriber & EventSource): boolean {
    return this.run.repeats(f, from);
  }

  /** A peer's event that repeatsRun() let through, counted as forwardedIngress counts; joins the run if `inOrder` (else dropped). */
  forwardedRepeat(f: Frame, inOrder: boolean): void {
    this.stats.msgsIn++;
    this.stats.bytesIn += f.size;
    this.deliveryTimer.tick();
    if (inOrder) this.run.extend(f);
  }

  /** Delivers an event the durable store accepted (or a delayed one that is due), to local receivers and peers alike, like a fresh publish from `from`. */
  deliverAccepted(f: Frame, from: Subscriber & EventSource = INTERNAL_PUBLISHER): number {
    // Leaves now, later than events stamped after it: the next sequence, so peers see this node's events in increasing
    // order (they drop any that go back). And this node's origin: a delayed publish may have been stamped by another node
    // sharing the store, whose id with this node's sequence would upset its order at peers (a hub drops those of a leaf).
    this.stamper.restamp(f);
    return this.fanOut(f, this.table.routeFrame(f, this.decodeTopic), from);
  }

  /** Delivers an admitted event; an event nobody receives counts in noInterest. `inPlace`: see deliver. */
  private fanOut(f: Frame, receivers: Receivers, from: Subscriber & EventSource, inPlace: boolean | 'raised' = false): number {
    const n = this.deliver(f, receivers, from, 'all', inPlace);
    if (n === 0) this.stats.noInterest++;
    return n;
  }

  /**
   * Delivers `f` to `receivers`; returns how many got it. `scope`: which receivers by where the event came from
   * (DeliveryScope): peers are skipped for 'local', gateway links for 'local' and 'region'; leaves are local receivers
   * of their hub. `inPlace` (a fresh ingress: the caller reads nothing of `f` after this): an untraced event for links
   * only gets its hops raised once in its own bytes (forward-slab.ts raiseHops); 'raised': the caller did that already.
   */
  deliver(f: Frame, receivers: Receivers, from: (Subscriber & EventSource) | undefined, scope: DeliveryScope, inPlace: boolean | 'raised' = false): number {
    this.run.flush(); // what was published before this event is delivered before it
    const otel = this.otlp?.parentOf(f);
    const tIn = f.traced || otel ? now() : 0;
    const trace: string[] | undefined = f.traced || otel ? [] : undefined;
    let n = 0;
    const skip = echoSkip(from);
    const plain = receivers.plain;
    const raised = inPlace === 'raised' || (inPlace && receivers.linksOnly && trace === undefined && raiseHops(f));
    for (let i = 0; i < plain.length; i++) {
      const s = plain[i]!;
      if (s === skip || outOfScope(s.kind, scope)) continue;
      // Events only 'drop' subscriptions want may be dropped: they never hold the publisher back (SPEC §10.6).
      const drop = receivers.plainDrop[i];
      if (raised) s.forwardRaised!(f);
      else s.deliver(f, 0, drop);
      if (from && drop === undefined && s.congested) from.blockOn(s);
      // A link that skips it (its peer's max payload; counted there), or for a REQ or a traced event a receiver whose rules
      // refuse it (Subscriber.admits: a token's deny), is no receiver: a REQ hears NO_RESPONDERS, a hop record counts no more.
      if (!takesPayload(s, f.payloadLen) || ((f.type === FrameType.REQ || trace) && !admitted(s, f))) continue;
      if (trace) trace.push(hopLabel(s));
      n++;
    }
    const lim = receivers.limited;
    for (let i = 0; i < lim.length; i++) {
      // Plain subscriptions with a max: each delivery counts (SUB `max`), once per pattern; one its token filtered out does not.
      const p = lim[i]!;
      if (p.owner !== skip && admitted(p.owner, f)) p.counted();
    }
    const sq = receivers.sequenced;
    for (let i = 0; i < sq.length; i++) {
      // Subscriptions resuming from a durable position: each gets its own in-order delivery.
      const s = sq[i]!;
      if (s.owner === skip) continue;
      s.sequencer!.offer(f);
      if (from && s.owner.congested) from.blockOn(s.owner);
      n++;
    }
    // A copy from another node (sid 0) is never a queue group's: its entry node picked each group's member (SPEC §10.3).
    const groups = from !== undefined && isLink(from.kind) ? NO_GROUPS : receivers.groups;
    for (const g of groups) {
      const m = this.table.pick(g, f, skip, scope);
      if (!m) continue;
      const drop = dropTagOf(m);
      m.owner.deliver(f, m.sid, drop);
      if (from && drop === undefined && m.owner.congested) from.blockOn(m.owner);
      if (!takesPayload(m.owner, f.payloadLen)) continue;
      if (trace) trace.push(hopLabel(m.owner, true));
      n++;
    }
    if (trace) reportHop(this, f, from, tIn, trace, otel);
    return this.countOut(n, f.size);
  }

  /** Delivers a queue-group event to one member of `group`, local members first (an event a peer handed to this node for one of its groups). */
  deliverToGroup(f: Frame, receivers: Receivers, group: string, from: (Subscriber & EventSource) | undefined, scope: DeliveryScope): boolean {
    this.run.flush(); // a peer's events before this one reach their receivers first
    const otel = this.otlp?.parentOf(f);
    const tIn = f.traced || otel ? now() : 0;
    for (const g of receivers.groups) {
      if (g.name !== group) continue;
      const m = this.table.pick(g, f, from, scope);
      if (!m) return false;
      const drop = dropTagOf(m);
      m.owner.deliver(f, m.sid, drop);
      if (from && drop === undefined && m.owner.congested) from.blockOn(m.owner);
      this.countOut(1, f.size);
      if (f.traced || otel) reportHop(this, f, from, tIn, [hopLabel(m.owner, true)], otel);
      return true;
    }
    return false;
  }

  private countOut(n: number, size: number): number {
    this.stats.msgsOut += n;
    this.stats.bytesOut += n * size;
    return n;
  }

  private tick(): void {
    const now = Date.now();
    for (const s of this.sessions) s.tick(now);
    this.table.sweepCache(now);
    this.topTopics.tick(now);
  }

  /**
   * Graceful stop: refuse new connections, tell every client to go elsewhere (GOODBYE MB_ERR_DRAINING with the
   * peer list), wait for them to flush and close (at most drainTimeout), then close the listener.
   */
  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.logger.info({ connections: this.sessions.size }, 'node draining');
    const closed = closeClientPort(this.server);
    await this.sessions.drain((kind) => this.peerUrls(kind), this.options.drainTimeout, (s) => this.durability?.answersOwed?.(s));
    if (this.timer) clearInterval(this.timer);
    this.inputBudget.close();
    await closed;
    await this.durability?.stop();
    await this.otlp?.flush(); // spans still batched: the process may exit right after this
    this.logger.info({}, 'node stopped');
  }

  /** Abrupt stop: drop every connection at once (tests, fatal errors). */
  async close(): Promise<void> {
    this.shuttingDown = true;
    if (this.timer) clearInterval(this.timer);
    this.sessions.destroyAll();
    const closed = closeClientPort(this.server, true);
    this.inputBudget.close();
    await closed;
    await this.durability?.stop();
    await this.otlp?.flush();
  }
}

/** Creates a node and starts listening. */
export async function startNode(options: NodeOptions = {}, scanner?: FrameScanner): Promise<MeshNode> {
  return new MeshNode(options, scanner).listen();
}

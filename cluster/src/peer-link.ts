import type { Socket } from 'node:net';
import {
  DEFAULT_MAX_PAYLOAD,
  FrameType,
  OFF,
  ProtocolError,
  codeFromNumber,
  isMeshbusError,
  encodeBody,
  encodeFrame,
  readU32,
  type ErrorCode,
  type Frame,
  thrownText,
} from '@meshbus/proto';
import { Connection, ForwardSlab, TLS_ON_PLAIN, TcpTransport, ToldRecently, remoteAddress, throttled, type ConnectionState } from '@meshbus/core';
import { newNonce, proof, proofMatches, secretMismatch } from './peer-auth.js';
import { checkLeafKey } from './leaf-keys.js';
import { LeafRules } from './leaf-rules.js';
import { parsePeerInfo, reachableAt, type PeerInfo } from './peer-info.js';
import { peerBody } from './peer-bodies.js';
import type { LinkSettings } from './link-settings.js';

export type { PeerInfo, LinkSettings };

/** What a client's HELLO on a cluster port is told (ERROR MB_ERR_BAD_PEER_INFO; SPEC 8). */
export const CLIENT_ON_CLUSTER_PORT = "this is a cluster (peer) port, not a client port: clients connect to the node's client port (meshbus start --port, 4480 by default)";
export const SEED_ON_CLIENT_PORT = "this address answered as a node's client port, not its cluster port: seeds, leaf hubs and gateways name cluster ports (meshbus start --cluster-port, 5480 by default)";
/**
 * Bytes a link may receive before it has authenticated, checked before each chunk is decoded: the handshake frames are a few
 * hundred bytes, so a connection that claims a huge frame (or streams garbage) is closed after at most this plus one socket
 * read, instead of being buffered up to the node's frame limit.
 */
export const PRE_AUTH_MAX_BYTES = 16 * 1024;

/** The link's owner: the cluster node. */
export interface LinkHandler {
  linkUp(link: PeerLink): void;
  linkDown(link: PeerLink, reason: string): void;
  /** An event (PUB or REQ) arrived from the peer; `repeat`: the scanner's SCAN_REPEAT (Repeats.UNSTAMPED, LinkSettings.scanner). */
  peerEvent(link: PeerLink, frame: Frame, repeat?: boolean): void;
  /** Delivers the events the node holds as a run (core publish-run.ts): the link calls it after each input chunk and before any other frame. */
  flushRun(): void;
  /**
   * Counts and tells (bounded) an event not sent because its payload is
   * larger than the peer's `maxPayload` (HELLO/WELCOME), and a frame from the
   * peer the decoder refused without ending the link (too large, bad topic...).
   */
  readonly limits: {
    tooLargeForPeer(link: PeerLink, payloadLen: number): void;
    badFrame(link: PeerLink, code: ErrorCode, message: string): void;
    /** An event this link lost (dropped from or discarded by its queue, or past its maxHops): counted node-wide, `stats.dropped[kind]`. */
    eventLost(kind: 'slowPeer' | 'maxHops' | 'outOfOrder'): void;
    /** Flow control paused this link's input for a receiver (`flowPauses`), or gave up on its receivers at maxStall (`flowStalls`), counted node-wide as a client's are. */
    flowHeld(stalled: boolean): void;
  };
  /** A cluster control frame (INTEREST, PEERS, TRACE_HOP) arrived. */
  peerControl(link: PeerLink, frame: Frame): void;
  /** The peer refused this link as a topology (ERROR MB_ERR_TOPOLOGY, its reason): the cluster says so, once per peer and reason, not per redial. */
  refusedByPeer(link: PeerLink, message: string): void;
}

type LinkState = 'handshake' | 'up' | 'closed';

/** Unanswered pings after which a link is stale (the same rule as clients', proto Liveness). */
const MAX_PINGS_OUT = 2;
/** After close, how long a link may take to flush its last frames before the socket is destroyed, ms. */
const CLOSE_TIMEOUT = 1000;

/** How often a peer's non-fatal ERROR of one code is logged again, ms. */
const ERROR_LOG_EVERY = 5 * 60_000;

let nextUid = 1_000_000_000;

/**
 * One TCP link to another node, either dialed or accepted, speaking the same frames as clients. It authenticates
 * the peer (HMAC challenge), carries events both ways, and is a Subscriber in the node's routing table: the peer's
 * interest is stored as subscriptions owned by the link, so routing hands events to it like to any client.
 */
export class PeerLink extends Connection {
  /** 'leaf' on a hub, for the link of a leaf node; 'gateway' for a link to a node of another region. Set by the cluster when the link comes up. */
  kind: 'peer' | 'leaf' | 'gateway' = 'peer';
  /** For a gateway link: the region at its other end. */
  region: string | undefined;
  readonly uid = nextUid++;
  readonly echo = true;
  readonly since = Date.now();
  /** The other node, once it authenticated (never a mere claim: see `claimed`). */
  peer: PeerInfo | undefined;
  /** The peer's node id as the two big-endian words of a header's origin field, to compare without making a string. */
  originWords: readonly [number, number] | undefined;
  /** What the other side claimed in its HELLO (acceptor) before proving it knows the secret. */
  private claimed: PeerInfo | undefined;
  /** Why the handshake failed, when it did: a code this side raised or the peer sent. */
  failCode: ErrorCode | undefined;
  private preAuthBytes = 0;
  rttMs: number | undefined;
  /** The address this link was dialed at (dialer side only). */
  target: string | undefined;
  msgsIn = 0;
  msgsOut = 0;
  droppedHops = 0;
  /** The largest payload the peer accepts (its HELLO/WELCOME `maxPayload`, else the default), set when the link comes up: larger events are not sent. */
  peerMaxPayload = DEFAULT_MAX_PAYLOAD;
  /** Events not sent because they were larger than `peerMaxPayload`. */
  tooLargeOut = 0;

  /** Subscriber.maxPayload: queue groups prefer a member whose link takes the event. */
  get maxPayload(): number {
    return this.peerMaxPayload;
  }
  /** Subscriber.passedOver: a keyed leaf far behind on its queue copies (LeafRules.copiesFull). */
  get passedOver(): boolean {
    return this.rules?.copiesFull === true;
  }
  /** Bytes of INTEREST frames (interest propagation) and PEERS frames (gossip) sent on this link. */
  interestBytesOut = 0;
  gossipBytesOut = 0;
  private readonly myNonce = newNonce();
  private theirNonce = '';
  /** What both ends' proofs are made with: the cluster secret, or a leaf's key (checkLeafKey). */
  private linkSecret: string | undefined;
  private pingSentAt = 0;
  /**
   * Set while INTEREST frames are owed to this link (interest-exchange.ts
   * gathers them until the end of the turn): called before an event is
   * written, so an event never overtakes interest this node announced before
   * it (a client's SUB then PUB in one chunk: a peer reacting to the event
   * could otherwise publish before it knew of the subscription).
   */
  owedInterest: (() => void) | undefined;
  /** Non-fatal ERRORs from the peer logged recently, per code. */
  private readonly errorsTold = new ToldRecently(ERROR_LOG_EVERY, 16);
  /** Where forwarded events are built (forward-slab.ts); made on the first forward. */
  private slab: ForwardSlab | undefined;
  /** A keyed leaf's reserved topics and publish and subscribe rules, on its hub (leaf-rules.ts). */
  rules: LeafRules | undefined;
  /** While set, input waits for the interest pace (interest-pacing.ts), whatever else would resume it. */
  private paced: ReturnType<typeof setTimeout> | undefined;

  constructor(
    socket: Socket,
    readonly role: 'dialer' | 'acceptor',
    private readonly s: LinkSettings,
    private readonly handler: LinkHandler,
    /** Fields added to this node's peer info in the HELLO (a gateway dial says so). */
    hello: Partial<PeerInfo> = {},
  ) {
    super((events) => new TcpTransport(socket, events), {
      scanner: s.scanner,
      // Until the cluster-secret challenge is passed only small frames are read: nothing bigger is buffered or decoded.
      preAuthFrameLength: PRE_AUTH_MAX_BYTES,
      maxFrameLength: s.maxFrameLength,
      // Events past maxPending are dropped (counted in `dropped`); a control frame (INTEREST, PONG…)
      // that does not fit means the peer stopped reading: the link closes and is dialed again.
      highWater: Math.min(4 * 1024 * 1024, s.maxPending >>> 1),
      maxPending: s.maxPending,
      policy: 'drop',
      handshakeTimeout: s.handshakeTimeout,
      liveness: { interval: s.pingInterval, maxOut: MAX_PINGS_OUT, wakeTimeout: s.pingInterval },
      closeTimeout: CLOSE_TIMEOUT,
      budget: s.budget,
      outbound: s.outbound,
    });
    this.linkSecret = s.leafKeySecret ?? s.secret;
    if (role === 'dialer') {
      this.sendControl(FrameType.HELLO, { v: [1, 1], peer: { ...s.self, ...hello }, nonce: this.myNonce });
    }
  }

  /** Holds input `ms` (a leaf past its interest pace), in place of a hold under way (the pace's whole deficit). */
  holdInput(ms: number): void {
    if (this.paced !== undefined) clearTimeout(this.paced);
    this.pauseInput();
    this.paced = setTimeout(() => {
      this.paced = undefined;
      this.resumeInput();
    }, ms);
  }

  protected override resumeInput(): void {
    if (this.paced === undefined) super.resumeInput();
  }

  protected override flowHeld(stalled: boolean): void {
    this.handler.limits.flowHeld(stalled);
  }

  protected override pausedElsewhere(): boolean {
    return this.paced !== undefined || super.pausedElsewhere();
  }

  protected override inputHeld(): boolean {
    return this.paced !== undefined;
  }

  get label(): string {
    return `peer ${this.peer?.id ?? this.remote}`;
  }

  /** 'handshake' until the peer proved the cluster secret, 'up' while it carries events, then 'closed'. */
  get state(): LinkState {
    const s = this.phase;
    return s === 'open' ? 'up' : s === 'handshake' ? 'handshake' : 'closed';
  }

  get peerId(): string | undefined {
    return this.peer?.id;
  }

  /**
   * Forwards an event with the hop count raised (and the peer's group id as sid for a queue delivery): small events copied
   * whole into the link's slab, back to back; larger ones as a copied header and then the topic, extension and payload as
   * received, uncopied (ForwardSlab).
   */
  deliver(f: Frame, sid: number): void {
    if (this.state !== 'up' || this.rules?.admits(f) === false) return;
    if (f.payloadLen > this.peerMaxPayload) return this.tooLarge(f);
    const hops = f.hops + 1;
    if (hops > f.maxHops) {
      this.droppedHops++;
      this.handler.limits.eventLost('maxHops');
      return;
    }
    if (this.owedInterest !== undefined) this.owedInterest();
    if ((this.slab ??= new ForwardSlab()).forward(f, sid, hops, this.out)) this.msgsOut++;
    if (sid !== 0) this.rules?.sentCopy(f, sid);
  }

  /**
   * Sends `f` as it is: the node raised its hops for every link already (it
   * goes to links only, MeshNode.deliver), sid 0. A range of the input
   * chunk, like a client's delivery: no copy, no view per event.
   */
  forwardRaised(f: Frame): void {
    if (this.state !== 'up' || this.rules?.admits(f) === false) return;
    if (f.payloadLen > this.peerMaxPayload) return this.tooLarge(f);
    if (this.owedInterest !== undefined) this.owedInterest();
    if (this.out.sendRange(f.buf, f.start, f.end)) this.msgsOut++;
  }

  /** A link forwards what the routing table gives it, whatever the topic, unless its leaf's rules deny some (Subscriber.deliversAnyTopic). */
  get deliversAnyTopic(): boolean {
    return this.rules?.filters !== true;
  }

  /** Subscriber.admits: a keyed leaf's subscribe rules (queue groups pass over a leaf they deny). */
  admits(f: Frame): boolean {
    return this.rules?.admits(f) !== false;
  }

  /** A run of events whose hops the node raised (Subscriber.forwardRaisedRange): one range of the input chunk. */
  forwardRaisedRange(first: Frame, end: number, count: number): void {
    if (this.state !== 'up' || this.rules?.admits(first) === false) return;
    if (this.owedInterest !== undefined) this.owedInterest();
    this.msgsOut += this.out.sendRun(first.buf, first.start, end, count);
  }

  /** One event lost by this link's queue (dropped, or discarded at the close): in `dropped` and node-wide. */
  override eventDropped(): void {
    this.handler.limits.eventLost('slowPeer');
  }

  private tooLarge(f: Frame): void {
    this.tooLargeOut++;
    this.handler.limits.tooLargeForPeer(this, f.payloadLen);
  }

  /** Whether the node at the other end stamped `f` (its origin is the peer's id), compared without making a string. */
  stampedByPeer(f: Frame): boolean {
    const w = this.originWords;
    return w !== undefined && readU32(f.buf, f.start + OFF.ORIGIN) === w[0] && readU32(f.buf, f.start + OFF.ORIGIN + 4) === w[1];
  }

  /** Sends a frame as is (trace reports, forwarded control). */
  sendRaw(bytes: Uint8Array): void {
    if (this.state === 'up') this.out.send(bytes);
  }

  sendControl(type: FrameType, body: object): void {
    if (this.state === 'closed') return;
    const frame = encodeFrame({ type, payload: encodeBody(body) });
    if (type === FrameType.INTEREST) this.interestBytesOut += frame.length;
    else if (type === FrameType.PEERS) this.gossipBytesOut += frame.length;
    this.send(frame);
  }

  // ---- input ----

  override onData(chunk: Uint8Array): void {
    if (this.state === 'handshake') {
      if (this.preAuthBytes > PRE_AUTH_MAX_BYTES) return this.fail('MB_ERR_FRAME_TOO_LARGE', `more than ${PRE_AUTH_MAX_BYTES} bytes before the peer handshake completed`);
      this.preAuthBytes += chunk.length;
    }
    super.onData(chunk);
    this.handler.flushRun();
  }

  protected readonly onDecodeError = (e: ProtocolError): void => {
    this.handler.flushRun();
    // Before authentication nothing is tolerated (and nothing is logged per frame).
    if (e.fatal || this.state === 'handshake') this.fail(e.code, e.message);
    // Counted and told once per peer and code every few minutes by the cluster: a peer
    // repeats what it does (before, a frame too large was a warning per frame, forever).
    else this.handler.limits.badFrame(this, e.code, e.message);
  };

  protected readonly onFrame = (f: Frame, repeat?: boolean): void => {
    try {
      if (this.state === 'handshake') {
        this.onHandshake(f);
        return;
      }
      if (this.state !== 'up') return;
      if (f.type !== FrameType.PUB) this.handler.flushRun(); // the events before it are delivered first
      switch (f.type) {
        case FrameType.PUB:
        case FrameType.REQ:
          this.msgsIn++;
          this.handler.peerEvent(this, f, repeat);
          return;
        case FrameType.PING:
          this.pong(f);
          return;
        case FrameType.PONG:
          if (this.rules?.answered(f.correlation) !== true && this.pingSentAt) this.rttMs = Date.now() - this.pingSentAt;
          return;
        case FrameType.GOODBYE:
          this.close('peer said goodbye');
          return;
        case FrameType.ERROR: {
          const b = peerBody(f);
          const code = codeFromNumber(Number(b.code));
          // A refused topology is a configuration error of this mesh: said by the cluster (error level, with the peer's reason).
          if (code === 'MB_ERR_TOPOLOGY') this.handler.refusedByPeer(this, String(b.message).slice(0, 500));
          // Once per code every ERROR_LOG_EVERY: a peer answers each of our frames it refuses (gossip every 5 s, forever).
          else if (this.errorsTold.due(code)) this.s.logger.warn({ peer: this.peer?.id, code, message: b.message }, 'peer reported an error (said again at most every 5 min)');
          return;
        }
        case FrameType.AUTH:
          return;
        default:
          this.handler.peerControl(this, f);
      }
    } catch (e) {
      const code: ErrorCode = isMeshbusError(e) ? e.code : 'MB_ERR_INTERNAL';
      if (this.state === 'handshake') return this.fail(code, e instanceof Error ? e.message : thrownText(e));
      // A peer that sends one bad frame per event: one line per peer and code a minute.
      throttled(this.s.logger).warn({ peer: this.peer?.id, code, err: thrownText(e) }, 'peer frame rejected', `peer frame rejected ${code}`, this.peer?.id);
    }
  };

  private onHandshake(f: Frame): void {
    const s = this.s;
    // Only the handshake's frames are decoded (SPEC 7): the code of another (PUB, INTEREST…) hung on whether its body decoded.
    if (f.type !== FrameType.ERROR && f.type !== FrameType.HELLO && f.type !== FrameType.WELCOME && f.type !== FrameType.AUTH) {
      return this.fail('MB_ERR_HANDSHAKE_REQUIRED', `unexpected ${f.typeName} during peer handshake`);
    }
    const body = peerBody(f);
    if (f.type === FrameType.ERROR) {
      const code = codeFromNumber(Number(body.code));
      const said = String(body.message).slice(0, 200);
      this.failCode = code;
      // A dialer that refused this node said why (a cluster secret that differs fails its check of our
      // proof): this node's operator hears it too. Only the dialer logged it.
      // Its own words about a secret speak of itself ("this node has one"): this node says it of itself.
      if (this.role === 'acceptor') this.tellFailure(code, `refused by the node that dialed: ${code === 'MB_ERR_AUTH_FAILED' ? secretMismatch(s, this.linkSecret) : said}`);
      this.close(`refused by peer: ${code} ${said}`);
      return;
    }
    if (this.role === 'acceptor' && f.type === FrameType.HELLO && !this.claimed) {
      // An address out of failed attempts gets no challenge to answer (and no proof of ours to study).
      const throttled = s.authThrottle?.refusal(remoteAddress(this.remote), 'peer');
      if (throttled) return this.fail(throttled.code, throttled.message);
      // A client's HELLO (no peer info): a client given the cluster port (it read "peer info is not a map").
      if (body.peer === undefined) return this.fail('MB_ERR_BAD_PEER_INFO', CLIENT_ON_CLUSTER_PORT);
      // Throws PeerInfoError (MB_ERR_BAD_PEER_INFO): the link fails below. A wildcard host: where we see it.
      const peer = reachableAt(parsePeerInfo(body.peer), remoteAddress(this.remote));
      if (typeof body.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(body.nonce)) return this.fail('MB_ERR_BAD_BODY', 'peer HELLO needs a nonce of 32 hex digits');
      if (peer.keyLabel !== undefined) {
        const key = checkLeafKey(peer, s.secret, s.deniedLeafKeys);
        if ('code' in key) {
          s.authThrottle?.failed(remoteAddress(this.remote), 'peer');
          return this.fail(key.code, key.message);
        }
        this.linkSecret = key.secret;
      }
      // Only a claim until AUTH proves it: never shown in views, never routed to.
      this.claimed = peer;
      this.theirNonce = body.nonce;
      this.sendControl(FrameType.WELCOME, {
        v: 1,
        peer: s.self,
        nonce: this.myNonce,
        proof: proof(this.linkSecret, 'acceptor', this.theirNonce, this.myNonce, peer.id, s.self.id),
      });
      return;
    }
    if (this.role === 'dialer' && f.type === FrameType.WELCOME) {
      // A client's WELCOME (no peer info): a seed or gateway address that is a client port (it read "peer info is not a map").
      if (body.peer === undefined) return this.fail('MB_ERR_BAD_PEER_INFO', SEED_ON_CLIENT_PORT);
      const peer = reachableAt(parsePeerInfo(body.peer), remoteAddress(this.remote));
      if (typeof body.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(body.nonce)) return this.fail('MB_ERR_BAD_BODY', 'peer WELCOME needs a nonce of 32 hex digits');
      const expected = proof(this.linkSecret, 'acceptor', this.myNonce, body.nonce, s.self.id, peer.id);
      if (!proofMatches(expected, body.proof)) return this.fail('MB_ERR_AUTH_FAILED', secretMismatch(s, this.linkSecret));
      this.peer = peer;
      this.theirNonce = body.nonce;
      this.sendControl(FrameType.AUTH, { proof: proof(this.linkSecret, 'dialer', this.myNonce, this.theirNonce, s.self.id, peer.id) });
      this.up();
      return;
    }
    if (this.role === 'acceptor' && f.type === FrameType.AUTH && this.claimed) {
      const expected = proof(this.linkSecret, 'dialer', this.theirNonce, this.myNonce, this.claimed.id, s.self.id);
      if (!proofMatches(expected, body.proof)) {
        s.authThrottle?.failed(remoteAddress(this.remote), 'peer');
        return this.fail('MB_ERR_AUTH_FAILED', secretMismatch(s, this.linkSecret));
      }
      this.peer = this.claimed;
      this.rules = LeafRules.of(s.leafPermissions, this.peer, this, s.logger);
      this.up();
      return;
    }
    this.fail('MB_ERR_HANDSHAKE_REQUIRED', `unexpected ${f.typeName} during peer handshake`);
  }

  private up(): void {
    const id = this.peer!.id;
    this.peerMaxPayload = this.peer!.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.originWords = [parseInt(id.slice(0, 8), 16), parseInt(id.slice(8), 16)];
    this.opened();
    this.handler.linkUp(this);
  }

  /** Liveness (the shared rule) and flow stalls, called by the cluster's timer. */
  tick(now: number, maxStall: number): void {
    if (this.state !== 'up') return;
    this.checkStall(now, maxStall);
    this.checkLiveness(now);
  }

  protected override ping(now: number): void {
    this.pingSentAt = now;
    super.ping(now);
  }

  protected override handshakeExpired(): void {
    this.fail('MB_ERR_HANDSHAKE_TIMEOUT', 'peer handshake timed out');
  }

  overflow(): void {
    this.fail('MB_ERR_SLOW_CONSUMER', `peer has more than ${this.s.maxPending} bytes pending`);
  }

  /** An HTTP request (curl, a browser, a ws:// client) on the cluster port: said in HTTP (core Connection). */
  protected override httpOnMeshbusPort(): void {
    super.httpOnMeshbusPort(
      'This is a meshbus cluster (peer) port: only other meshbus nodes link here, in the meshbus protocol. ' +
        'Clients connect to the client port (meshbus start --port, 4480 by default); the HTTP API has its own port (--http-port, 8480 by default).',
    );
  }

  /** A TLS peer dialed this plain cluster port (core Connection saw its ClientHello): the hint is the mesh's setting. */
  protected override tlsOnPlainPort(): void {
    this.fail('MB_ERR_BAD_MAGIC', `${TLS_ON_PLAIN}: every node of a mesh needs the same cluster TLS setting (--cluster-tls)`);
  }

  protected override failing(code: ErrorCode, message: string): void {
    if (this.state === 'handshake') this.failCode = code;
    // A link we dialed that fails its handshake is a failed attempt at that address: the
    // cluster's redialer says so once per way of failing, not once per redial.
    if (this.state === 'handshake' && this.role === 'dialer') return;
    // A link refused as a topology: the cluster said why (cluster-node.ts refuseTopology), once per peer and reason.
    if (code === 'MB_ERR_TOPOLOGY') return;
    // A leaf or gateway link past maxLeafLinks / maxGatewayLinks: said by leaves.ts / gateways.ts, at most once a minute.
    if (code === 'MB_ERR_TOO_MANY_CONNECTIONS' && this.state !== 'handshake') return;
    // Keyed by the address without its port (a redial comes from a new one) and the code, never by
    // the message: it quotes what the connection sent (a node id of its choosing), and a key it
    // chooses is a line per connection.
    // Past the addresses it remembers, one key per code: a flood failing one way hides no other.
    this.tellFailure(code, message);
  }

  /** 'closing peer link' at warn; during a handshake once per address and code (acceptFailuresTold). */
  private tellFailure(code: ErrorCode, message: string): void {
    if (this.state === 'handshake' && this.s.acceptFailuresTold?.due(`${remoteAddress(this.remote)} ${code}`, undefined, code) === false) return;
    this.s.logger.warn({ peer: this.peer?.id, remote: this.remote, code, message }, 'closing peer link');
  }

  /** Closes the link (flushing what is queued); the cluster hears linkDown(reason) at once. */
  close(reason: string): void {
    this.end(undefined, reason);
  }

  protected closing(was: ConnectionState, reason: string): void {
    clearTimeout(this.paced);
    this.releaseFlow();
    this.handler.linkDown(this, was === 'open' ? reason : `handshake failed: ${reason}`);
  }
}


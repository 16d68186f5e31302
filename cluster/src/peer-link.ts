import type { Socket } from 'node:net';
import {
  ERROR_CODES,
  FIXED_SIZE,
  FrameDecoder,
  FrameType,
  OFF,
  ProtocolError,
  codeFromNumber,
  isMeshbusError,
  copyBytes,
  decodeBody,
  encodeBody,
  encodeFrame,
  resealHeader,
  writeU32,
  type ErrorCode,
  type Frame,
  type FrameScanner,
} from '@meshbus/proto';
import {
  OutboundQueue,
  FlowEndpoint,
  TcpWire,
  type Logger,
} from '@meshbus/core';
import { newNonce, proof, proofMatches } from './peer-auth.js';
import { parsePeerInfo, type PeerInfo } from './peer-info.js';

export type { PeerInfo };

/**
 * Bytes a link may receive before it has authenticated, checked before each
 * chunk is decoded: the handshake frames are a few hundred bytes, so a
 * connection that claims a huge frame (or streams garbage) is closed after
 * at most this plus one socket read, instead of being buffered up to the
 * node's frame limit.
 */
export const PRE_AUTH_MAX_BYTES = 16 * 1024;

export interface LinkSettings {
  self: PeerInfo;
  secret: string | undefined;
  pingInterval: number;
  handshakeTimeout: number;
  maxPending: number;
  maxStall: number;
  maxFrameLength: number;
  scanner: FrameScanner;
  logger: Logger;
}

/** The link's owner: the cluster node. */
export interface LinkHandler {
  linkUp(link: PeerLink): void;
  linkDown(link: PeerLink, reason: string): void;
  /** An event (PUB or REQ) arrived from the peer. */
  peerEvent(link: PeerLink, frame: Frame): void;
  /** A cluster control frame (INTEREST, PEERS, TRACE_HOP) arrived. */
  peerControl(link: PeerLink, frame: Frame): void;
}

type LinkState = 'handshake' | 'up' | 'closed';

let nextUid = 1_000_000_000;

/**
 * One TCP link to another node, either dialed or accepted, speaking the same
 * frames as clients. It authenticates the peer (HMAC challenge), carries
 * events both ways, and is a Subscriber in the node's routing table: the
 * peer's interest is stored as subscriptions owned by the link, so routing
 * hands events to it like to any client.
 */
export class PeerLink extends FlowEndpoint {
  readonly kind = 'peer' as const;
  readonly uid = nextUid++;
  readonly echo = true;
  readonly since = Date.now();
  /** The other node, once it authenticated (never a mere claim: see `claimed`). */
  peer: PeerInfo | undefined;
  /** What the other side claimed in its HELLO (acceptor) before proving it knows the secret. */
  private claimed: PeerInfo | undefined;
  /** Why the handshake failed, when it did: a code this side raised or the peer sent. */
  failCode: ErrorCode | undefined;
  private preAuthBytes = 0;
  state: LinkState = 'handshake';
  rttMs: number | undefined;
  /** The address this link was dialed at (dialer side only). */
  target: string | undefined;
  msgsIn = 0;
  msgsOut = 0;
  droppedHops = 0;
  private readonly wire: TcpWire;
  protected readonly out: OutboundQueue;
  private readonly decoder: FrameDecoder;
  private readonly myNonce = newNonce();
  private theirNonce = '';
  private lastRx = Date.now();
  private pingsOut = 0;
  private pingSentAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    socket: Socket,
    readonly role: 'dialer' | 'acceptor',
    private readonly s: LinkSettings,
    private readonly handler: LinkHandler,
  ) {
    super();
    this.wire = new TcpWire(socket, {
      data: (c) => this.onData(c),
      drain: () => this.onDrain(),
      close: () => this.onClose(),
    });
    // Events past maxPending are dropped (counted in `dropped`); a control frame (INTEREST, PONG…)
    // that does not fit means the peer stopped reading: the link closes and is dialed again.
    this.out = new OutboundQueue(this.wire, Math.min(4 * 1024 * 1024, s.maxPending >>> 1), s.maxPending, 'drop', () =>
      this.fail('MB_ERR_SLOW_CONSUMER', `peer has more than ${s.maxPending} bytes pending`),
    );
    // Until the cluster-secret challenge is passed only small frames are read: nothing bigger is buffered or decoded.
    this.decoder = new FrameDecoder({ maxFrameLength: Math.min(PRE_AUTH_MAX_BYTES, s.maxFrameLength), scanner: s.scanner });
    this.timer = setTimeout(() => {
      if (this.state === 'handshake') this.fail('MB_ERR_HANDSHAKE_TIMEOUT', 'peer handshake timed out');
    }, s.handshakeTimeout);
    if (role === 'dialer') {
      this.sendControl(FrameType.HELLO, { v: [1, 1], peer: s.self, nonce: this.myNonce });
    }
  }

  get label(): string {
    return `peer ${this.peer?.id ?? this.remote}`;
  }

  /** ms since anything arrived on this link (pongs included). */
  silentFor(now: number): number {
    return now - this.lastRx;
  }

  get remote(): string {
    return this.wire.remote;
  }

  get peerId(): string | undefined {
    return this.peer?.id;
  }

  protected pauseInput(): void {
    this.wire.pause();
  }

  protected resumeInput(): void {
    if (this.state !== 'closed') this.wire.resume();
  }

  /**
   * Forwards an event: a copy of the 64-byte header with the hop count
   * raised (and the peer's group id as sid for a queue delivery), then the
   * topic, extension and payload as received, uncopied.
   */
  deliver(f: Frame, sid: number): void {
    if (this.state !== 'up') return;
    const hops = f.hops + 1;
    if (hops > f.maxHops) {
      this.droppedHops++;
      return;
    }
    const head = copyBytes(f.buf, f.start, f.start + FIXED_SIZE);
    head[OFF.HOPS] = hops;
    writeU32(head, OFF.SID, sid);
    resealHeader(head, 0);
    if (this.out.send(head, f.buf.subarray(f.start + FIXED_SIZE, f.end))) this.msgsOut++;
  }

  /** Sends a frame as is (trace reports, forwarded control). */
  sendRaw(bytes: Uint8Array): void {
    if (this.state === 'up') this.out.send(bytes);
  }

  sendControl(type: FrameType, body: object): void {
    if (this.state === 'closed') return;
    this.out.sendControl(encodeFrame({ type, payload: encodeBody(body) }));
  }

  // ---- input ----

  private onData(chunk: Uint8Array): void {
    if (this.state === 'closed') return;
    if (this.state === 'handshake') {
      if (this.preAuthBytes > PRE_AUTH_MAX_BYTES) return this.fail('MB_ERR_FRAME_TOO_LARGE', `more than ${PRE_AUTH_MAX_BYTES} bytes before the peer handshake completed`);
      this.preAuthBytes += chunk.length;
    }
    this.lastRx = Date.now();
    this.pingsOut = 0;
    this.decoder.push(chunk, this.onFrame, this.onDecodeError);
  }

  private readonly onDecodeError = (e: ProtocolError): void => {
    // Before authentication nothing is tolerated (and nothing is logged per frame).
    if (e.fatal || this.state === 'handshake') this.fail(e.code, e.message);
    else this.s.logger.warn({ peer: this.peer?.id, code: e.code }, 'bad frame from peer');
  };

  private readonly onFrame = (f: Frame): void => {
    try {
      if (this.state === 'handshake') {
        this.onHandshake(f);
        return;
      }
      if (this.state !== 'up') return;
      switch (f.type) {
        case FrameType.PUB:
        case FrameType.REQ:
          this.msgsIn++;
          this.handler.peerEvent(this, f);
          return;
        case FrameType.PING:
          this.out.sendControl(encodeFrame({ type: FrameType.PONG, correlation: f.correlation }));
          return;
        case FrameType.PONG:
          if (this.pingSentAt) this.rttMs = Date.now() - this.pingSentAt;
          return;
        case FrameType.GOODBYE:
          this.close('peer said goodbye');
          return;
        case FrameType.ERROR: {
          const b = decodeBody(f.payload);
          this.s.logger.warn({ peer: this.peer?.id, code: codeFromNumber(Number(b.code)), message: b.message }, 'peer reported an error');
          return;
        }
        case FrameType.AUTH:
          return;
        default:
          this.handler.peerControl(this, f);
      }
    } catch (e) {
      const code: ErrorCode = isMeshbusError(e) ? e.code : 'MB_ERR_INTERNAL';
      if (this.state === 'handshake') return this.fail(code, e instanceof Error ? e.message : String(e));
      this.s.logger.warn({ peer: this.peer?.id, code, err: String(e) }, 'peer frame rejected');
    }
  };

  private onHandshake(f: Frame): void {
    const s = this.s;
    const body = decodeBody(f.payload);
    if (f.type === FrameType.ERROR) {
      const code = codeFromNumber(Number(body.code));
      this.failCode = code;
      this.close(`refused by peer: ${code} ${String(body.message).slice(0, 200)}`);
      return;
    }
    if (this.role === 'acceptor' && f.type === FrameType.HELLO && !this.claimed) {
      // Throws PeerInfoError (MB_ERR_BAD_PEER_INFO): the link fails below.
      const peer = parsePeerInfo(body.peer);
      if (typeof body.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(body.nonce)) return this.fail('MB_ERR_BAD_BODY', 'peer HELLO needs a nonce of 32 hex digits');
      // Only a claim until AUTH proves it: never shown in views, never routed to.
      this.claimed = peer;
      this.theirNonce = body.nonce;
      this.sendControl(FrameType.WELCOME, {
        v: 1,
        peer: s.self,
        nonce: this.myNonce,
        proof: proof(s.secret, 'acceptor', this.theirNonce, this.myNonce, peer.id, s.self.id),
      });
      return;
    }
    if (this.role === 'dialer' && f.type === FrameType.WELCOME) {
      const peer = parsePeerInfo(body.peer);
      if (typeof body.nonce !== 'string' || !/^[0-9a-f]{32}$/.test(body.nonce)) return this.fail('MB_ERR_BAD_BODY', 'peer WELCOME needs a nonce of 32 hex digits');
      const expected = proof(s.secret, 'acceptor', this.myNonce, body.nonce, s.self.id, peer.id);
      if (!proofMatches(expected, body.proof)) return this.fail('MB_ERR_AUTH_FAILED', 'peer failed the cluster secret challenge');
      this.peer = peer;
      this.theirNonce = body.nonce;
      this.sendControl(FrameType.AUTH, { proof: proof(s.secret, 'dialer', this.myNonce, this.theirNonce, s.self.id, peer.id) });
      this.up();
      return;
    }
    if (this.role === 'acceptor' && f.type === FrameType.AUTH && this.claimed) {
      const expected = proof(s.secret, 'dialer', this.theirNonce, this.myNonce, this.claimed.id, s.self.id);
      if (!proofMatches(expected, body.proof)) return this.fail('MB_ERR_AUTH_FAILED', 'peer failed the cluster secret challenge');
      this.peer = this.claimed;
      this.up();
      return;
    }
    this.fail('MB_ERR_HANDSHAKE_REQUIRED', `unexpected ${f.typeName} during peer handshake`);
  }

  private up(): void {
    clearTimeout(this.timer);
    this.decoder.limit = this.s.maxFrameLength;
    this.state = 'up';
    this.lastRx = Date.now();
    this.handler.linkUp(this);
  }

  private onDrain(): void {
    this.drained();
  }

  /** Liveness, called by the cluster's timer. */
  tick(now: number, maxStall: number): void {
    if (this.state !== 'up') return;
    this.checkStall(now, maxStall);
    if (now - this.lastRx < this.s.pingInterval) return;
    if (this.pingsOut >= 2) {
      this.close('peer stopped answering pings');
      this.wire.destroy();
      return;
    }
    this.pingsOut++;
    this.lastRx = now;
    this.pingSentAt = now;
    this.out.sendControl(encodeFrame({ type: FrameType.PING, correlation: this.pingsOut }));
  }

  fail(code: ErrorCode, message: string): void {
    if (this.state === 'closed') return;
    if (this.state === 'handshake') this.failCode = code;
    this.s.logger.warn({ peer: this.peer?.id, remote: this.remote, code, message }, 'closing peer link');
    this.out.sendFinal(encodeFrame({ type: FrameType.ERROR, payload: encodeBody({ code: ERROR_CODES[code].num, message }) }));
    this.close(message);
  }

  close(reason: string): void {
    if (this.state === 'closed') return;
    const wasUp = this.state === 'up';
    this.state = 'closed';
    clearTimeout(this.timer);
    this.releaseFlow();
    this.wire.end();
    setTimeout(() => this.wire.destroy(), 1000).unref();
    this.handler.linkDown(this, wasUp ? reason : `handshake failed: ${reason}`);
  }

  /** Stops at once (tests: simulate a crash of this side of the link). */
  destroy(): void {
    this.wire.destroy();
  }

  private onClose(): void {
    this.close('connection closed');
  }
}

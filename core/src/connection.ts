import {
  FIXED_SIZE,
  FrameDecoder,
  OFF,
  copyBytes,
  applyCrcDelta,
  patchU8,
  patchU32,
  FrameType,
  Liveness,
  encodeFrame,
  errorFrame,
  goodbyeFrame,
  isTlsRecord,
  refusalFrame,
  type ErrorCode,
  type Frame,
  type FrameHandler,
  type FrameScanner,
  type LivenessOptions,
  type ProtocolError,
} from '@meshbus/proto';
import { FlowEndpoint } from './flow-endpoint.js';
import type { InputBudget, InputHolder } from './input-budget.js';
import type { OutboundBudget } from './outbound-budget.js';
import { TLS_ON_PLAIN } from './tls-port.js';
import { OutboundQueue, type DropTag } from './outbound-queue.js';
import type { SlowPolicy } from './subscriber.js';
import type { Transport, TransportEvents } from './transport.js';

/** The start of an HTTP/1 request line: a method and a space. */
const HTTP_REQUEST = /^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH|CONNECT|TRACE) /;

/** The first bytes of `chunk` as Latin-1 (enough for a request line's method). */
function latin1Head(chunk: Uint8Array): string {
  return String.fromCharCode(...chunk.subarray(0, 8));
}

/** What an HTTP request on a client port is answered with (httpOnMeshbusPort). */
export const HTTP_ON_CLIENT_PORT =
  'This is a meshbus client port: it speaks the meshbus protocol over TCP (the SDK, meshbus pub/sub), not HTTP. ' +
  'The HTTP API and dashboard have their own port (meshbus start --http-port, 8480 by default); ' +
  'WebSocket clients connect to the gateway (--ws-port, 8481 by default).';
/** Where a connection is: authenticating, open, flushing its last frames, gone. */
export type ConnectionState = 'handshake' | 'open' | 'closing' | 'closed';

/** What a connection is built with (all sizes in bytes, times in ms). */
export interface ConnectionSettings {
  scanner: FrameScanner;
  /** Largest frame decoded before the handshake completes. */
  preAuthFrameLength: number;
  /** Largest frame decoded once open. */
  maxFrameLength: number;
  /** Outbound queue: high-water mark, hard bound, and what happens to events past the mark. */
  highWater: number;
  maxPending: number;
  policy: SlowPolicy;
  /** Time allowed for the handshake; past it the connection fails with MB_ERR_HANDSHAKE_TIMEOUT. */
  handshakeTimeout: number;
  /** The shared liveness rule's settings (proto Liveness): ping interval, unanswered pings, wake-up probe deadline. */
  liveness: LivenessOptions;
  /** After close(), how long the transport may take to flush before it is destroyed. */
  closeTimeout: number;
  /** The node-wide input budget (input-budget.ts) the bytes of unfinished frames are charged to; none: unbounded (tests, tools). */
  budget?: InputBudget;
  /** The node-wide outbound budget (outbound-budget.ts) its queue joins (SPEC 10.6); none: unbounded. */
  outbound?: OutboundBudget;
}

/**
 * What a transport tells its connection: one small object per connection,
 * its methods on the prototype. An object of four arrow functions cost an
 * idle connection four closures and their context (with the TCP socket's
 * shared listeners, 140 B of heap per idle connection at 5,000; issue #15).
 */
class ConnectionEvents implements TransportEvents {
  constructor(private readonly c: Connection) {}

  data(chunk: Uint8Array): void {
    this.c.onData(chunk);
  }

  drain(): void {
    this.c.transportDrained();
  }

  close(): void {
    this.c.onClose();
  }

  held(bytes: number): void {
    this.c.transportHolds(bytes);
  }
}

/**
 * One framed connection, whatever is on the other end: what client sessions
 * and peer links share. It owns the transport, the frame decoder, the
 * outbound queue, liveness (the same pure rule as the SDK's, so a connection
 * whose other end only publishes, or only answers pings, is never declared
 * stale), the handshake deadline, and close/destroy. Every ERROR and GOODBYE
 * it sends is built by proto's errorFrame/goodbyeFrame.
 *
 * Subclasses keep only their protocol: `onFrame` / `onDecodeError` for input,
 * the `closing` / `ended` hooks, and `overflow` (the queue's hard bound hit).
 */
export abstract class Connection extends FlowEndpoint implements InputHolder {
  protected phase: ConnectionState = 'handshake';
  readonly transport: Transport;
  protected readonly out: OutboundQueue;
  protected readonly decoder: FrameDecoder;
  /** Date.now() of the last chunk received, and how many chunks arrived (liveness input). */
  protected lastRx = Date.now();
  private received = 0;
  /** Writes the wire took (liveness keepalive input: see proto Liveness). */
  private sent = 0;
  bytesIn = 0;
  private readonly liveness: Liveness;
  /** When the liveness rule wants its next tick (the node sweeps all connections on one timer). */
  private due = Infinity;
  /** A probe is running (timers were frozen): its deadline, ms; 0 when none. */
  private probeMs = 0;
  private pingSeq = 0;
  /** The handshake deadline; once closing, the transport's deadline to finish (closeTimeout). */
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** InputHolder: bytes of unfinished input charged to the node's budget, and since when the budget pauses this connection (0: it does not). */
  inputCharge = 0;
  inputWaitSince = 0;
  /** Bytes the transport holds of a message not yet whole (WebSocket fragments), reported by its `held` event. */
  private transportHeld = 0;
  /**
   * GOODBYE went out and input is still read (goodbye with `linger`): until when, Date.now() ms; 0 when not
   * lingering. The phase stays 'open' meanwhile (what the other end sent before it read the GOODBYE is routed as
   * usual, under the same input budget and rate limits) while the sealed queue sends nothing after the GOODBYE
   * and the subclass has left routing (`leaveRouting`).
   */
  private lingerUntil = 0;

  /** Frames decoded from the transport; an arrow field, so the hot path makes no closure. */
  protected abstract readonly onFrame: FrameHandler;
  protected abstract readonly onDecodeError: (e: ProtocolError) => void;

  constructor(
    makeTransport: (events: TransportEvents) => Transport,
    protected readonly settings: ConnectionSettings,
  ) {
    super();
    this.transport = makeTransport(new ConnectionEvents(this));
    this.decoder = new FrameDecoder({ maxFrameLength: Math.min(settings.preAuthFrameLength, settings.maxFrameLength), scanner: settings.scanner, room: settings.budget?.room });
    this.out = new OutboundQueue(this.transport, settings.highWater, settings.maxPending, settings.policy, this, settings.outbound);
    this.liveness = new Liveness(settings.liveness);
    this.timer = setTimeout(() => {
      if (this.phase === 'handshake') this.handshakeExpired();
    }, settings.handshakeTimeout);
  }

  /** @internal The transport took queued bytes (TransportEvents.drain). */
  transportDrained(): void {
    this.sent++;
    this.drained();
  }

  /** @internal The transport holds `bytes` of a message not yet whole (TransportEvents.held). */
  transportHolds(bytes: number): void {
    this.transportHeld = bytes;
    this.chargeInput();
  }

  /** "ip:port" of the other end. */
  get remote(): string {
    return this.transport.remote;
  }

  /** ms since anything arrived (pongs included). */
  silentFor(now: number): number {
    return now - this.lastRx;
  }

  protected pauseInput(): void {
    this.transport.pause();
  }

  protected resumeInput(): void {
    if (this.phase !== 'closed' && this.inputWaitSince === 0) this.transport.resume();
  }

  /** Whether input may be read again once the reason it was paused for is gone: no receiver and no budget keeps it paused. */
  protected inputMayResume(): boolean {
    return !this.pausedElsewhere() && this.inputWaitSince === 0;
  }

  /** Input is paused for another reason than the input budget (flow control: a receiver). */
  protected pausedElsewhere(): boolean {
    return this.sourceBlocked;
  }

  /** Charges what this connection holds of unfinished input (decoder and transport) to the node's budget. */
  private chargeInput(): void {
    const b = this.settings.budget;
    if (b === undefined || this.phase === 'closing' || this.phase === 'closed') return;
    b.charge(this, this.decoder.held + this.transportHeld);
  }

  // ---- InputHolder (input-budget.ts) ----

  inputProgress(): number {
    return this.pausedElsewhere() ? -1 : this.bytesIn + this.transportHeld;
  }

  inputPause(): void {
    this.transport.pause();
  }

  inputResume(): void {
    if (this.phase !== 'closed' && this.inputMayResume()) this.transport.resume();
  }

  inputEvict(why: string): void {
    this.fail('MB_ERR_INPUT_BUDGET', why);
    // What it sends from now on is not kept (every frame is past a limit of 0: skipped unbuffered); reading lets the close complete.
    this.decoder.reset();
    this.decoder.limit = 0;
    this.transport.resume();
  }

  /** Bytes from the transport. */
  onData(chunk: Uint8Array): void {
    if (this.phase === 'closed') return;
    this.lastRx = Date.now();
    this.bytesIn += chunk.length;
    if (this.received++ === 0 && this.transport.kind === 'tcp') {
      if (isTlsRecord(chunk)) return this.tlsOnPlainPort();
      if (HTTP_REQUEST.test(latin1Head(chunk))) return this.httpOnMeshbusPort();
    }
    this.decoder.push(chunk, this.frameReader, this.onDecodeError);
    // A frame that arrived whole leaves nothing held: one comparison (SPEC 9.5).
    if (this.decoder.buffered !== 0 || this.inputCharge !== 0) this.chargeInput();
  }

  /**
   * The first bytes are a TLS record (a tls:// client's, or a TLS peer's, ClientHello) on this plain port: said in
   * those words, not as the bad magic the decoder would find in them. The ERROR frame still goes out: to a TLS
   * client its bytes are no TLS record, which OpenSSL reports as "wrong version number", and the SDK as "use
   * tcp://". Subclasses log it.
   */
  protected tlsOnPlainPort(): void {
    this.fail('MB_ERR_BAD_MAGIC', TLS_ON_PLAIN);
  }

  /**
   * The first bytes begin an HTTP/1 request (curl, a browser, a ws:// client given this TCP port): answered in
   * HTTP, a 400 whose text says which port this is and where HTTP and WebSocket are served (SPEC 2), then closed.
   * Before, an ERROR frame went out, which an HTTP client shows as garbage or as "Parse Error", a WebSocket client
   * as a bare 1006. No frame starts so: a frame's first byte is the top of its length, 0 for any frame a node takes.
   */
  protected httpOnMeshbusPort(text = HTTP_ON_CLIENT_PORT): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    // Logged and counted as the ERROR it was before (failing, errorSent): only the bytes sent differ.
    this.failing('MB_ERR_BAD_MAGIC', 'HTTP request on a meshbus port');
    this.errorSent('MB_ERR_BAD_MAGIC', 'HTTP request on a meshbus port');
    const body = Buffer.from(`${text}\n`, 'utf8');
    this.transport.write(Buffer.concat([Buffer.from(`HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`, 'latin1'), body]));
    this.end('MB_ERR_BAD_MAGIC', 'HTTP request on a meshbus port');
  }

  /** The handshake succeeded: full-size frames, no handshake deadline, liveness starts. */
  protected opened(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.decoder.limit = this.settings.maxFrameLength;
    this.phase = 'open';
    const now = Date.now();
    this.due = now + this.liveness.start(now, this.received);
  }

  /** The handshake deadline passed. */
  protected handshakeExpired(): void {
    this.fail('MB_ERR_HANDSHAKE_TIMEOUT', `${this.settings.handshakeTimeout} ms`);
  }

  /**
   * Liveness (proto Liveness): called by the owner's sweep timer; acts only
   * once the rule's due time is reached. Pings, probes after a frozen timer,
   * and fails a silent connection with MB_ERR_STALE_CONNECTION.
   */
  protected checkLiveness(now: number): void {
    // A due time further off than any wait the rule gives means the clock went back: tick now (the rule then probes).
    const l = this.liveness.options;
    if (this.phase !== 'open' || (now < this.due && this.due - now <= Math.max(l.interval, l.wakeTimeout))) return;
    // Paused by the input budget (SPEC 9.5): the other end's pings and pongs wait unread, a silence of the node's own making,
    // not a sign of a dead peer (a link's 2 s pings went stale before a 5 s inputStall closed the holders it waited for). A
    // waiter that never gets through is the budget's to close (3 × inputStall). So is a hold of a subclass's (inputHeld).
    if (this.inputWaitSince !== 0 || this.inputHeld()) {
      this.lastRx = now;
      this.received++;
    }
    const probing = this.probeMs;
    this.probeMs = 0;
    const a = probing > 0 ? this.liveness.probeEnded(now, this.received, probing) : this.liveness.tick(now, this.lastRx, this.received, this.sent);
    switch (a.do) {
      case 'wait':
        this.due = now + a.ms;
        return;
      case 'ping':
        this.ping(now);
        this.due = now + a.ms;
        return;
      case 'probe':
        this.probeMs = this.liveness.probe(this.received);
        this.ping(now);
        this.due = now + this.probeMs;
        return;
      case 'stale':
        this.stale(a.reason);
        return;
    }
  }

  /** Whether a subclass holds input itself for a bounded time (a peer link's interest pace): no liveness meanwhile. */
  protected inputHeld(): boolean {
    return false;
  }

  /** Sends a PING (a subclass may note the time, e.g. for round trips). */
  protected ping(_now: number): void {
    this.send(encodeFrame({ type: FrameType.PING, correlation: ++this.pingSeq }));
  }

  /** The other end stopped answering. */
  protected stale(reason: string): void {
    this.fail('MB_ERR_STALE_CONNECTION', reason);
  }

  /** Answers a PING with its PONG. */
  protected pong(f: Frame): void {
    this.send(encodeFrame({ type: FrameType.PONG, correlation: f.correlation }));
  }

  /** Sends a control frame; it counts against maxPending (past it: `overflow`). */
  send(chunk: Uint8Array): void {
    if (this.phase === 'closed') return;
    this.out.sendControl(chunk);
  }

  /**
   * A non-fatal ERROR on `correlation` (0: none); `nack`: the frame refused is
   * a PUB that asked for an ACK, which gets a NACK instead (SPEC 10.2: exactly
   * one ACK or NACK; an ERROR left the publisher waiting for its ack).
   */
  sendError(code: ErrorCode, correlation: number, message: string, nack = false): void {
    // After a GOODBYE nothing is sent (the queue is sealed): not counted as an ERROR sent either.
    if (this.phase === 'closed' || this.lingerUntil !== 0) return;
    this.errorSent(code, message);
    this.out.sendControl(refusalFrame(code, correlation, nack, message));
  }

  /** Sends a fatal ERROR as the last frame (bounded, see OutboundQueue.sendFinal), then closes once it is flushed. */
  fail(code: ErrorCode, message: string): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    this.failing(code, message);
    // Lingering after a GOODBYE: that was the last frame; the connection just ends.
    if (this.lingerUntil !== 0) return this.end(code, message);
    this.errorSent(code, message);
    this.out.sendFinal(errorFrame(code, 0, message));
    this.end(code, message);
  }

  /**
   * Sends GOODBYE as the last frame (`reconnect`: where to go instead), then closes. `linger` (ms, an open
   * connection only: a node's drain, SPEC 10.7): the connection leaves routing (no event follows the GOODBYE) and
   * ends its side once the GOODBYE is flushed, but keeps reading and handling what the other end sends (events it
   * published before it read the GOODBYE, ACKs, UNSUBs; nothing that needs an answer: readAfterGoodbye) until it
   * closes its side, or `linger` ms pass: then it is cut (lingerExpired). Without it, input stops at once (a peer
   * link's goodbye). `answered` (with `linger`): the answers owed to the acked publishes read so far; the GOODBYE
   * waits for them, an acked publish read meanwhile is NACKed `code` (not taken), so one the other end has no
   * answer for at the GOODBYE was not taken (it says `answered`). Still waiting when `linger` ends: cut, no GOODBYE.
   */
  goodbye(code: ErrorCode, reason: string, reconnect?: string[], linger = 0, answered?: Promise<void>): void {
    if (this.phase === 'closing' || this.phase === 'closed' || this.lingerUntil !== 0) return;
    if (answered && linger > 0 && this.phase === 'open' && this.reader === undefined) {
      const until = Date.now() + linger;
      this.reader = (f) => (f.type === FrameType.PUB && f.ackRequested ? this.sendError(code, f.correlation, `${reason}: not taken, publish it elsewhere`, true) : this.onFrame(f));
      const send = (): void => this.goodbye(code, reason, reconnect, Math.max(1, until - Date.now()));
      return void answered.then(send, send);
    }
    this.out.sendFinal(goodbyeFrame(code, reason, reconnect, linger > 0 || undefined));
    if (linger <= 0 || this.phase !== 'open') return this.end(code, reason);
    this.lingerUntil = Date.now() + linger;
    this.reader = (f) => this.readAfterGoodbye(f);
    clearTimeout(this.timer);
    // Out of routing now (nothing follows the GOODBYE); the rest of the session (its token, frames held for its
    // check) stays until the connection ends: what it read before is handled in order, its token still expires.
    this.leaveRouting();
    this.out.afterBacklog(() => this.transport.end(code));
    // The transport may have closed at once (onClose ran: phase 'closed', no timer to arm).
    if ((this.phase as ConnectionState) !== 'open') return;
    this.timer = setTimeout(() => this.lingerExpired(), linger);
    this.timer.unref();
  }

  /** Where frames go during a drain (goodbye with `linger`), made only then (an arrow field cost every connection 56 B). */
  private reader: ((f: Frame) => void) | undefined;

  /** Where decoded frames go (and frames held for a token check, when released): onFrame, or `reader` during a drain. */
  protected get frameReader(): FrameHandler {
    return this.reader ?? this.onFrame;
  }

  /** A GOODBYE that lingers went out: no event may be routed to this connection from now on (a session's subscriptions end). */
  protected leaveRouting(): void {}

  /** Frames read after this end's GOODBYE: what the other end sent before it read it, handled as usual, except what would start something new. */
  private readAfterGoodbye(f: Frame): void {
    // Their answers could not come (nothing follows the GOODBYE): not taken, so sent again elsewhere they are no duplicates.
    if (f.type === FrameType.SUB || f.type === FrameType.AUTH || f.type === FrameType.REQ || (f.type === FrameType.PUB && f.ackRequested)) return;
    this.onFrame(f);
  }

  /**
   * The linger after a GOODBYE is over and the other end has not closed its
   * side: cut. An event it was sending, part of which was read, is lost:
   * counted as any event the connection lost (eventDropped). What the
   * transport had not read yet is not known to be events; left unread.
   */
  private lingerExpired(): void {
    if (this.phase !== 'open') return;
    if (this.decoder.buffered !== 0 || this.transportHeld !== 0) this.eventDropped([]);
    this.transport.destroy();
  }

  /**
   * Stops reading and routing, flushes and ends the transport (`code`: the
   * fatal ERROR or GOODBYE code that ends it, if any); a transport that does
   * not finish within closeTimeout is destroyed.
   */
  protected end(code: ErrorCode | undefined, reason: string): void {
    if (this.phase === 'closing' || this.phase === 'closed') return;
    const was = this.phase;
    this.settings.budget?.charge(this, 0);
    this.phase = 'closing';
    clearTimeout(this.timer);
    this.closing(was, reason);
    // After what the last frame queued behind (sendFinal): the deadline below cuts it off, counted (discard).
    this.out.afterBacklog(() => this.transport.end(code));
    if (this.phase !== 'closing') return; // the transport closed at once (onClose ran)
    // A peer that never reads would keep the socket half-open; bound the wait. Cleared when the
    // transport closes: left armed, it held every closed connection (session, socket, buffers:
    // ~3.5 KB of heap) for closeTimeout, ~17,500 of them at 3,500 connections a second with 5 s.
    // Ending while lingering after a GOODBYE: no later than the linger's end (a drain's deadline).
    const wait = this.lingerUntil === 0 ? this.settings.closeTimeout : Math.max(0, Math.min(this.settings.closeTimeout, this.lingerUntil - Date.now()));
    this.timer = setTimeout(() => this.transport.destroy(), wait);
    this.timer.unref();
  }

  /** Drops the connection at once, queued frames included. */
  destroy(): void {
    this.transport.destroy();
  }

  /** The transport is gone. */
  onClose(): void {
    if (this.phase === 'closed') return;
    this.end(undefined, 'connection closed');
    clearTimeout(this.timer);
    this.phase = 'closed';
    // What still waits in the queue is never sent: each event lost is counted (eventDropped) before ended().
    this.out.discard();
    this.releaseFlow();
    this.ended();
  }

  /** Before a fatal ERROR is sent (logging, the reason a handshake failed). */
  protected failing(_code: ErrorCode, _message: string): void {}
  /** An ERROR is about to be sent (counters). */
  protected errorSent(_code: ErrorCode, _message: string): void {}
  /** The connection stops (state was `was`): leave routing, tell the owner. Called once. */
  protected abstract closing(was: ConnectionState, reason: string): void;
  /** The transport closed, after `closing`. Called once. */
  protected ended(): void {}
  /**
   * One event was lost by the outbound queue: a droppable one dropped or refused, or any one discarded at the
   * close (sendFinal past the bound, or still queued when the transport closed); `tag` names who lost it (none
   * for a firm one). Each subclass counts it in a node-wide counter. Called by the queue (QueueOwner).
   */
  eventDropped(_tag: DropTag): void {}
  /** The outbound queue passed its hard bound with a frame that must not be dropped (QueueOwner). */
  abstract overflow(): void;
}

/**
 * A copy of `f`'s 64-byte header with `sid` and `hops` set and resealed: what
 * a queue-group delivery (sid names the member) or a forward to a peer (hops
 * raised) sends before the rest of the frame, which goes out uncopied.
 */
export function forwardedHeader(f: Frame, sid: number, hops: number): Uint8Array {
  const head = copyBytes(f.buf, f.start, f.start + FIXED_SIZE);
  // A copy of a checked header: its CRC is updated for the changed bytes only (header-patch.ts).
  applyCrcDelta(head, 0, patchU8(head, 0, OFF.HOPS, hops) ^ patchU32(head, 0, OFF.SID, sid));
  return head;
}

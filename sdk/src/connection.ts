import {
  BATCH_BYTES,
  ClientError,
  FrameDecoder,
  FrameType,
  HEADER_SIZE,
  MAX_EXT,
  SessionError,
  codeFromNumber,
  decodeError,
  decodeWelcome,
  FIXED_SIZE,
  ProtocolError,
  encodeBody,
  encodeExtension,
  encodeFrame,
  headerOf,
  writeHeader,
  errorFromCode,
  isMeshbusError,
  type Frame,
  type FrameSpec,
  type HelloBody,
  type MeshbusError,
  type WelcomeBody,
  thrownText,
} from '@meshbus/proto';
import type { ServerUrl } from './servers.js';
import { topicBytes, writeTopic } from './topic-cache.js';
import { sealedHead } from './sealed-head.js';
import type { Transport } from './transport.js';
import { connectionClosed, messageOf } from './errors.js';
import { MAX_TIMER } from './timer.js';
import { MAX_FRAME } from './frame-limits.js';

/**
 * Largest control body (WELCOME, ERROR, GOODBYE, ACK...) the client decodes:
 * a node's are small (a WELCOME naming 40,000 peers is under 1 MB). Without
 * it a hostile node could have the client buffer and decode a 64 MiB body
 * (a msgpack array of 30 million nils in a WELCOME: 2.2 s and ~185 MiB of
 * RSS per connection attempt). Before WELCOME nothing larger is buffered.
 */
const MAX_CONTROL_BODY = 4 * 1024 * 1024;
const MAX_HANDSHAKE_FRAME = HEADER_SIZE + 0xffff + MAX_EXT + MAX_CONTROL_BODY;
/**
 * The one write batch of the client (the transports write what they are
 * given at once): frames are encoded into a slab, back to back, and a
 * tick's frames go to the transport in one send() (one writev, one
 * WebSocket message). Slab bytes are never reused (the transport may hold
 * them until its write), a full slab is replaced by a new one.
 */
const SLAB_BYTES = 128 * 1024;
/** Payloads above this are not copied: the frame goes out as `[head, payload]`. */
const COPY_MAX = 2 * 1024;
/**
 * A node's PING is not answered while this many bytes wait unsent toward it
 * (SPEC 10.5): they answer it when they arrive, and a node that does not
 * read them would otherwise make the client queue one PONG per PING it
 * sends, without bound (1,000,000 PINGs queued 60 MB of PONGs).
 */
const PONG_BACKLOG = 64 * 1024;
/** Unanswered PINGs whose place in the output is kept (1,000,000 timed-out flushes kept ~70 MB). */
const PINGS_KEPT = 1024;
const EMPTY = new Uint8Array(0);

export interface ConnectionHandlers {
  /** A frame received after the handshake (and PINGs during it). */
  frame(conn: Connection, f: Frame): void;
  /** A non-fatal decoding problem (e.g. an oversized frame that was skipped). */
  problem(conn: Connection, e: MeshbusError): void;
  /** The connection ended; `error` says why, undefined after a local close. Called once. */
  closed(conn: Connection, error: MeshbusError | undefined): void;
}

/**
 * One session with one node over one transport: the frame decoder, the
 * HELLO/WELCOME handshake and the close bookkeeping. The client above it
 * owns subscriptions, requests and reconnects.
 */
export class Connection {
  /** Date.now() of the last byte received. */
  lastReceived = Date.now();
  /** Chunks received. */
  receivedCount = 0;
  /** Writes handed to the transport (the heartbeat's keepalive input). */
  sentCount = 0;
  /** Bytes handed to the transport; where each PING still unanswered ends (bytes, events given) and when it went; the end of the last answered one. */
  private sentBytes = 0;
  private readonly pingEnds = new Map<number, { bytes: number; events: number; at: number }>();
  private confirmedBytes = 0;
  /** The transport's queue when last read (after each hand-over): at least what it holds now (see fits()). */
  private queued = 0;
  /**
   * Events given to this connection whose loss nothing else reports (plain
   * publishes, replies, the outbox; not requests or acked publishes), and how
   * many of them a PONG (any: flush, heartbeat) or a draining node's GOODBYE
   * has shown the node took: drain() rejects when a connection it used ends
   * with some not confirmed.
   */
  eventsGiven = 0;
  eventsConfirmed = 0;
  welcome: WelcomeBody | undefined;
  /** Why the connection is ending, when the node told us (ERROR, GOODBYE) or a check failed. */
  error: MeshbusError | undefined;
  private decoder = new FrameDecoder({ maxFrameLength: MAX_HANDSHAKE_FRAME });
  private handshake: { resolve: (w: WelcomeBody) => void; reject: (e: MeshbusError) => void } | undefined;
  private ended = false;
  private localClose = false;
  private slab: Uint8Array = EMPTY;
  /** Start of the bytes not yet handed to the transport, and end of the encoded bytes, in `slab`. */
  private batchStart = 0;
  private batchEnd = 0;
  /** Gathered this tick and not yet handed over: slab segments, and `[head, payload]` of large events. */
  private out: Uint8Array[] = [];
  private outBytes = 0;
  private flushScheduled = false;

  constructor(
    readonly server: ServerUrl,
    readonly transport: Transport,
    private readonly handlers: ConnectionHandlers,
  ) {
    transport.onData = this.onData;
    transport.onClose = (reason) => this.onTransportClose(reason);
  }

  get isOpen(): boolean {
    return !this.ended;
  }

  /** Connects the transport, sends HELLO and waits for WELCOME; rejects with the node's ERROR when it refuses. */
  async open(hello: HelloBody, timeout: number): Promise<WelcomeBody> {
    // connectTimeout: Infinity (or past what a timer holds) must not time out at once, here nor in the transport.
    timeout = Math.min(timeout, MAX_TIMER);
    const deadline = Date.now() + timeout;
    // The handshake waits before the transport connects: a node that refuses says why at once, before any HELLO
    // (MB_ERR_TOO_MANY_CONNECTIONS, MB_ERR_DRAINING), and its ERROR may arrive before connect() resolves (the Node
    // transports resolve once the native scanner has loaded too; a WebSocket's first message can precede the
    // continuation of its open). Without a handshake waiting, that ERROR was dropped.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const welcome = new Promise<WelcomeBody>((resolve, reject) => {
      this.handshake = {
        resolve: (w) => {
          clearTimeout(timer);
          resolve(w);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
    // Settled while connect() is awaited, it is returned below; when connect() throws, its error is the one reported.
    welcome.catch(() => undefined);
    await this.transport.connect(this.server, { timeout });
    const scanner = this.transport.scanner;
    if (scanner !== undefined && this.receivedCount === 0) this.decoder = new FrameDecoder({ maxFrameLength: MAX_HANDSHAKE_FRAME, scanner });
    // None waits any more when the node answered or the connection ended meanwhile (finish() rejects it).
    if (this.handshake) {
      timer = setTimeout(
        () => {
          const hs = this.handshake;
          this.handshake = undefined;
          const e = new ClientError('MB_ERR_CONNECT_FAILED', `${this.server.href}: no WELCOME within ${timeout} ms`);
          hs?.reject(e);
          this.close(e);
        },
        Math.max(1, deadline - Date.now()),
      );
      this.sendFrame({ type: FrameType.HELLO, payload: encodeBody(hello) });
    }
    return welcome;
  }

  /** Bytes given to this connection and not yet taken by the OS / WebSocket: this tick's batch and the transport's queue. */
  get unsent(): number {
    return this.outBytes + this.batchEnd - this.batchStart + (this.queued = this.transport.pendingBytes);
  }

  /**
   * Whether `bytes` more keep `unsent` within `max` (or nothing waits): the
   * send bound's test (send-buffer.ts), on every publish. The transport's
   * queue is read only near the bound: what it held after the last
   * hand-over bounds it until the next (it only drains between).
   */
  fits(bytes: number, max: number): boolean {
    const local = this.outBytes + this.batchEnd - this.batchStart;
    if (local + this.queued + bytes <= max) return true;
    const unsent = this.unsent;
    return unsent === 0 || unsent + bytes <= max;
  }

  /**
   * How long ago the oldest unanswered PING went, ms, when more than
   * `behind` bytes sent before it are unconfirmed (no PONG has shown the
   * node read them): it waits behind them, in the OS's send buffer too
   * (megabytes on loopback, which Node does not show). Else undefined. The
   * heartbeat's input (proto Liveness, "Behind an upload").
   */
  stuckFor(behind: number): number | undefined {
    for (const p of this.pingEnds.values()) return p.bytes - this.confirmedBytes > behind ? Date.now() - p.at : undefined;
    return undefined;
  }

  /** A PONG for `correlation`: the node read everything sent before that PING (it answers in order). */
  ponged(correlation: number): void {
    const end = this.pingEnds.get(correlation);
    if (end === undefined) return;
    this.pingEnds.delete(correlation);
    if (end.bytes > this.confirmedBytes) this.confirmedBytes = end.bytes;
    if (end.events > this.eventsConfirmed) this.eventsConfirmed = end.events;
  }

  /** Records a PING ending at `bytes`; at most PINGS_KEPT unanswered (flushes that timed out toward a node that never answers). */
  private pinged(correlation: number, bytes: number): void {
    const ends = this.pingEnds;
    if (ends.size >= PINGS_KEPT) ends.delete(ends.keys().next().value as number);
    ends.set(correlation, { bytes, events: this.eventsGiven, at: Date.now() });
  }

  /** Answers a node's PING, unless PONG_BACKLOG bytes already wait for the node (they answer it when they arrive). */
  pong(correlation: number): void {
    if (this.unsent < PONG_BACKLOG) this.sendFrame({ type: FrameType.PONG, correlation });
  }

  /** Sends a whole frame (control frames). */
  sendFrame(spec: FrameSpec): void {
    if (this.ended) return;
    const frame = encodeFrame(spec);
    this.room(frame.length);
    const off = this.reserve(frame.length);
    this.slab.set(frame, off);
    if (spec.type === FrameType.PING) this.pinged(spec.correlation ?? 0, this.sentBytes + this.outBytes + off + frame.length - this.batchStart);
    this.commit(off + frame.length);
  }

  /**
   * Sends an event: encoded into the tick's batch (topic bytes and hash
   * cached per topic string; a plain PUB's first bytes copied from its
   * topic's sealed head, sealed-head.ts); a payload over COPY_MAX is not
   * copied: the batch carries it as a chunk of its own after the frame's
   * first bytes.
   */
  sendEvent(spec: FrameSpec): void {
    if (this.ended) return;
    const p = spec.payload ?? EMPTY;
    const topic = spec.topic ?? '';
    const t = topicBytes(topic);
    const topicLen = t.length;
    if (topicLen > 0xffff) throw new ProtocolError('MB_ERR_BAD_TOPIC', `topic of ${topicLen} bytes`);
    const ext = spec.ext === undefined ? EMPTY : (encodeExtension(spec.ext) ?? EMPTY);
    // `publish(topic, payload)`: no extension block, flags or correlation (the SDK sets no other header field).
    const head = ext.length === 0 && !spec.correlation && !spec.flags && spec.type === FrameType.PUB ? sealedHead(t, p.length) : undefined;
    // A payload over COPY_MAX is not copied: it follows the frame's first bytes as a chunk of its own.
    const copied = p.length > COPY_MAX ? 0 : p.length;
    const size = FIXED_SIZE + topicLen + ext.length + copied;
    this.room(size + p.length - copied);
    const off = this.reserve(size);
    const slab = this.slab;
    if (head !== undefined) slab.set(head, off);
    else {
      writeTopic(t, topic, slab, off + FIXED_SIZE);
      if (ext.length > 0) slab.set(ext, off + FIXED_SIZE + topicLen);
      writeHeader(slab, off, headerOf(spec, t.hash, topicLen, ext.length, p.length));
    }
    if (copied > 0) slab.set(p, off + FIXED_SIZE + topicLen + ext.length);
    if (copied === p.length) return this.commit(off + size);
    this.batchEnd = off + size;
    this.cut();
    this.out.push(p);
    this.outBytes += p.length;
    this.scheduleFlush();
  }

  /** Hands the batch over first when a frame of `size` bytes would take it past BATCH_BYTES. */
  private room(size: number): void {
    const n = this.outBytes + this.batchEnd - this.batchStart;
    if (n > 0 && n + size > BATCH_BYTES) this.flushBatch();
  }

  /** Offset in `slab` where `size` bytes can be written (a new slab when the current one is full). */
  private reserve(size: number): number {
    if (this.batchEnd + size <= this.slab.length) return this.batchEnd;
    this.cut();
    this.slab = new Uint8Array(Math.max(SLAB_BYTES, size));
    this.batchStart = this.batchEnd = 0;
    return 0;
  }

  /** Marks `slab[.., end)` as encoded; hands the batch over at the end of the tick, or now when it is large. */
  private commit(end: number): void {
    this.batchEnd = end;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.outBytes + this.batchEnd - this.batchStart >= BATCH_BYTES) this.flushBatch();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // After the current synchronous code (a microtask), on every platform. void: flushBatch hands
      // bytes to a transport whose send failures end the connection inside it, so it cannot reject.
      void Promise.resolve().then(this.flushBatch);
    }
  }

  /** Moves the slab bytes encoded since the last cut into the batch. */
  private cut(): void {
    const start = this.batchStart;
    const end = this.batchEnd;
    if (end === start) return;
    this.batchStart = end;
    this.out.push(this.slab.subarray(start, end));
    this.outBytes += end - start;
  }

  /**
   * Hands what is encoded to the transport now. Returns false when the
   * connection is (or just got) closed: then what was encoded since the
   * last successful hand-over was not sent (a transport refuses
   * synchronously, by throwing).
   */
  flushNow(): boolean {
    this.flushBatch();
    return !this.ended;
  }

  private readonly flushBatch = (): void => {
    this.flushScheduled = false;
    this.cut();
    const out = this.out;
    if (out.length === 0) return;
    this.sentBytes += this.outBytes;
    this.out = [];
    this.outBytes = 0;
    if (!this.ended) this.send(out);
  };

  /**
   * Hands chunks to the transport. A transport that throws (a socket already
   * gone, a bug) ends this connection with the error instead of escaping
   * into a microtask (an uncaught error) or into the caller's loop.
   */
  private send(chunks: Uint8Array[]): void {
    this.sentCount++;
    try {
      this.transport.send(chunks);
      this.queued = this.transport.pendingBytes;
    } catch (e) {
      const err = isMeshbusError(e) ? e : connectionClosed(`${this.server.href}: transport send failed: ${messageOf(e)}`, { cause: e });
      this.close(err);
    }
  }

  /**
   * Ends the session. `error` records why (reported by `closed`); without
   * one this is a polite local close. Idempotent.
   */
  close(error?: MeshbusError): void {
    if (this.ended) return;
    if (error) this.error ??= error;
    else this.localClose = true;
    this.flushBatch();
    try {
      this.transport.close();
    } catch {
      /* ending anyway: the transport is dropped */
    }
    this.finish(undefined);
  }

  private readonly onData = (chunk: Uint8Array): void => {
    this.lastReceived = Date.now();
    this.receivedCount++;
    this.decoder.push(chunk, this.onFrame, this.onDecodeError);
  };

  private readonly onFrame = (f: Frame): void => {
    if (this.ended) return;
    if (f.payloadLen > MAX_CONTROL_BODY && f.type !== FrameType.PUB && f.type !== FrameType.REQ) {
      this.close(new ProtocolError('MB_ERR_FRAME_TOO_LARGE', `${f.typeName} of ${f.payloadLen} bytes`));
      return;
    }
    const hs = this.handshake;
    if (hs) {
      switch (f.type) {
        case FrameType.WELCOME: {
          this.handshake = undefined;
          try {
            this.welcome = decodeWelcome(f.payload);
            // Events may be as large as the client accepts from now on.
            this.decoder.limit = MAX_FRAME;
          } catch (e) {
            const err = isMeshbusError(e) ? e : new ClientError('MB_ERR_CONNECT_FAILED', thrownText(e));
            hs.reject(err);
            this.close(err);
            return;
          }
          hs.resolve(this.welcome);
          return;
        }
        case FrameType.ERROR: {
          this.handshake = undefined;
          const err = errorFrom(f);
          hs.reject(err);
          this.close(err);
          return;
        }
        case FrameType.PING:
          this.handlers.frame(this, f);
          return;
        default: {
          this.handshake = undefined;
          const err = new SessionError('MB_ERR_UNEXPECTED_FRAME', `${f.typeName} before WELCOME from ${this.server.href}`);
          hs.reject(err);
          this.close(err);
          return;
        }
      }
    }
    if (this.welcome) this.handlers.frame(this, f);
  };

  private readonly onDecodeError = (e: ProtocolError): void => {
    // Before WELCOME nothing is skipped: a node has no reason to send a large frame then.
    if (e.fatal || this.handshake) this.close(e);
    else this.handlers.problem(this, e);
  };

  private onTransportClose(reason: Error | undefined): void {
    if (this.ended) return;
    if (reason) this.error ??= isMeshbusError(reason) ? reason : connectionClosed(reason.message, { cause: reason });
    else if (!this.localClose) this.error ??= connectionClosed(`${this.server.href} closed the connection`);
    this.finish(undefined);
  }

  private finish(_: undefined): void {
    if (this.ended) return;
    this.ended = true;
    const hs = this.handshake;
    this.handshake = undefined;
    hs?.reject(this.error ?? new ClientError('MB_ERR_CONNECT_FAILED', `${this.server.href}: closed during the handshake`));
    this.decoder.reset();
    // A handshake that failed is reported through open()'s rejection only.
    if (this.welcome) this.handlers.closed(this, this.localClose && !this.error ? undefined : this.error);
  }
}

/** The typed error carried by an ERROR frame, with the body's `count` when it has one (MB_ERR_EVENTS_DROPPED). */
export function errorFrom(f: Frame): MeshbusError & { count?: number } {
  try {
    const b = decodeError(f.payload);
    return Object.assign(errorFromCode(codeFromNumber(b.code), b.message), { count: b.count });
  } catch (e) {
    return isMeshbusError(e) ? e : errorFromCode('MB_ERR_BAD_BODY');
  }
}

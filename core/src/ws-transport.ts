import { TickBatch } from './tick-batch.js';
import { detached, writeBatch } from './socket-write.js';
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { Liveness, messageEnd, messageLimit, readU32, type ErrorCode } from '@meshbus/proto';
import { WS_CLOSE, wsCloseCode } from './ws-close-codes.js';
import { eventsIn, untakenBytes } from './unsent-events.js';
import type { Transport, TransportEvents } from './transport.js';

/** What the wire reports to its gateway besides the session's events. */
export interface WsTransportHooks {
  /** A message broke the framing rule (SPEC §2): text, or ending inside a frame; or more arrived than limitInput allows. */
  protocolError(code: 'MB_ERR_TRUNCATED' | 'MB_ERR_UNEXPECTED_FRAME' | 'MB_ERR_FRAME_TOO_LARGE', message: string): void;
}

/**
 * A Transport over one WebSocket (the `ws` package). SPEC §2: binary messages
 * only, each holding whole frames. Frames written in one tick are batched
 * into binary messages (a frame of 1 KiB or more joins a message within
 * 16 KiB, a smaller one within 64 KiB: `messageLimit`; a larger frame goes
 * alone), sent on the next process tick.
 * `buffered` is what waits in the batch plus `ws.bufferedAmount` (socket
 * buffer and, with permessage-deflate, the compression queue); pause/resume
 * stop reading from the underlying socket.
 */
export class WsTransport implements Transport {
  readonly kind = 'ws' as const;
  readonly remote: string;
  /**
   * ws-level keepalive, judged by the shared liveness rule (proto Liveness,
   * one unanswered ping allowed): anything received, a pong or any message,
   * answers the pings. Undefined when the gateway does not ping.
   */
  private readonly keepalive: Liveness | undefined;
  private received = 0;
  private lastRx = Date.now();
  private readonly batch = new TickBatch(() => this.flush(true));
  /**
   * Messages cut during this tick, waiting for its end (direct writes only):
   * each one's header and chunks, and how many messages they are. Written in
   * one system call at the tick's end, as a TCP wire writes: a message written
   * as soon as it was cut made four writes (and four wake-ups of the reader)
   * per 64 KiB of 4 KiB events (bench/README "WebSocket: one write per tick").
   */
  private tickParts: Uint8Array[] = [];
  private tickMessages = 0;
  private tickBytes = 0;
  /**
   * Where each message in flight ends (direct writes), beside `messages`: in
   * the socket's own byte count (`bytesWritten`, which counts the frames `ws`
   * writes itself too: close, ping, pong), relative to the tick's first
   * message until the tick's write.
   */
  private readonly messageEnds: number[] = [];
  /** Messages each write in flight carries, oldest first (from `writesAt`). */
  private readonly writes: number[] = [];
  private writesAt = 0;
  private ended = false;
  /** Set when the wire itself saw the violation (text message: 1003); wins over the session's reason. */
  private closeCode: number | undefined;
  private readonly sent = (err?: Error | null): void => {
    const k = this.writes[this.writesAt++] ?? 1;
    if (this.writesAt === this.writes.length) this.writes.length = this.writesAt = 0;
    else if (this.writesAt > COMPACT_AT && this.writesAt * 2 > this.writes.length) this.writes.splice(0, this.writesAt), (this.writesAt = 0);
    if (err) return;
    // Node calls back the write it cancelled at a destroy without an error: those messages were lost
    // (destroy() counted what the system had taken of them).
    if (!this.socket.destroyed) for (let i = 0; i < k; i++) this.inWire -= this.messages[this.messagesAt++] ?? 0;
    if (this.messagesAt === this.messages.length) this.messages.length = this.messageEnds.length = this.messagesAt = 0;
    else if (this.messagesAt > COMPACT_AT && this.messagesAt * 2 > this.messages.length) this.compactMessages();
    // The socket took a write (a tick's messages): progress for the session's write deadline and backlog, and
    // the wake-up for publishers waiting on this receiver (no 'drain' follows a write the kernel took whole).
    this.events.drain();
  };
  /** Events in the batch (countEvents), and those counted once nothing could be sent any more. */
  private batchEvents = 0;
  /** Events of the range being written that writeRange counted in the messages it cut. */
  private precounted = 0;

  private lostAfter = 0;
  /**
   * Events of each message sent that the socket has not taken whole yet,
   * oldest first (from `messagesAt`), and their sum. A message is what a
   * client gets whole or not at all: counted per message, exactly.
   */
  private readonly messages: number[] = [];
  private messagesAt = 0;
  private inWire = 0;

  /** Bytes the socket may deliver while input is limited (limitInput), undefined when it is not. */
  private inputLimit: number | undefined;
  private inputRead = 0;
  /** More than inputLimit arrived: reading stopped, the connection is being refused. */
  private overLimit = false;
  private readonly countInput = (chunk: Buffer): void => {
    if (this.inputLimit === undefined || this.overLimit) return;
    this.inputRead += chunk.length;
    if (this.inputRead > this.inputLimit + FRAMING_SLACK) this.refuseInput(`more than ${this.inputLimit} bytes before the handshake`);
  };

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Socket,
    private readonly events: TransportEvents,
    private readonly hooks: WsTransportHooks,
    private readonly compress: boolean,
    /** ws-level ping period, ms (0: none); the gateway calls keepAlive() at this period. */
    pingInterval = 0,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.direct = ws.extensions === '';
    if (pingInterval > 0) {
      this.keepalive = new Liveness({ interval: pingInterval, maxOut: 1, wakeTimeout: pingInterval });
      this.keepalive.start(this.lastRx, 0);
    }
    socket.setNoDelay(true);
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onMessage(data, isBinary));
    ws.on('pong', () => this.heard());
    ws.on('close', () => events.close());
    // Errors (ECONNRESET, bad frames, maxPayload exceeded) are followed by 'close'.
    ws.on('error', () => {});
    socket.on('drain', () => events.drain());
    // After ws's own 'data' listener (it was added when ws took the socket): what ws still holds once it parsed the chunk.
    if (events.held !== undefined) {
      socket.on('data', this.reportHeld);
      this.inflateWhileReading = reportInflated(ws, this.reportHeld);
    }
  }

  /** With permessage-deflate: inflates the frame held back while paused (reportInflated). */
  private inflateWhileReading: (() => void) | undefined;
  /** Bytes last reported held (SPEC 9.5: charged to the node's input budget). */
  private heldReported = 0;
  private readonly reportHeld = (): void => {
    const n = wsHeldBytes(this.ws);
    if (n !== this.heldReported) {
      this.heldReported = n;
      this.events.held?.(n);
    }
  };

  get buffered(): number {
    return this.batch.bytes + this.tickBytes + this.ws.bufferedAmount;
  }

  countEvents(n: number): void {
    n -= this.precounted;
    this.precounted = 0;
    if (this.writable) this.batchEvents += n;
    else this.lostAfter += n;
  }

  get unsentEvents(): number {
    return this.lostAfter + this.batchEvents + this.inWire;
  }

  get writable(): boolean {
    return !this.ended && this.ws.readyState === 1;
  }

  write(chunk: Uint8Array, tail?: Uint8Array): void {
    if (this.ended || this.ws.readyState !== 1) return;
    // The cut goes before the whole frame: a header and its tail cut apart were a message ending inside a frame.
    const size = tail === undefined ? chunk.length : chunk.length + tail.length;
    if (this.batch.bytes > 0 && this.batch.bytes + size > messageLimit(size)) this.flush();
    this.batch.add(chunk);
    if (tail !== undefined) this.batch.add(tail);
  }

  /**
   * A range of whole frames (one event, or a node's run of them, up to
   * BATCH_BYTES): cut into messages between frames (messageEnd). The events
   * of each message cut here are counted here (the queue counts the run once
   * it is written: `precounted` is taken off that).
   */
  writeRange(buf: Uint8Array, start: number, end: number): void {
    if (this.ended || this.ws.readyState !== 1) return;
    for (let e = messageEnd(buf, start, end, this.batch.bytes); e < end; e = messageEnd(buf, start, end, this.batch.bytes)) {
      if (e > start) {
        const n = eventsIn(buf, start, e);
        this.batchEvents += n;
        this.precounted += n;
        this.batch.addRange(buf, start, e);
        start = e;
      }
      this.flush();
      // Not sent (the socket is closing): the rest waits with it.
      if (this.batch.bytes > 0) break;
    }
    this.batch.addRange(buf, start, end);
  }

  pause(): void {
    this.ws.pause();
  }

  resume(): void {
    this.ws.resume();
    this.inflateWhileReading?.();
  }

  end(reason?: ErrorCode): void {
    if (this.ended) return;
    this.flush(true);
    this.ended = true;
    if (this.ws.readyState === 1) this.ws.close(this.closeCode ?? wsCloseCode(reason), reason ?? '');
    // Input past the bound is no longer read (paused): a FIN right after the close frame lets the
    // client see the end now, without waiting for a closing handshake this side will not read.
    if (this.overLimit) this.socket.end();
  }

  destroy(): void {
    this.ended = true;
    this.batch.take();
    if (this.direct && !this.socket.destroyed) {
      // Messages the system took whole are sent: the callback of the write cancelled now will not say so.
      const taken = (this.socket.bytesWritten ?? 0) - untakenBytes(this.socket);
      // Only messages written: the tick's own hold ends relative to the tick (writeTick).
      const written = this.messages.length - this.tickMessages;
      while (this.messagesAt < written && this.messageEnds[this.messagesAt]! <= taken) this.inWire -= this.messages[this.messagesAt++]!;
    }
    // The tick's messages not written yet stay counted in inWire: lost.
    this.tickParts = [];
    this.tickMessages = this.tickBytes = 0;
    this.ws.terminate();
  }

  /**
   * Bounds what this connection may send, in bytes, until called again with
   * undefined (the session does so once HELLO is accepted). Counted on the
   * socket's own 'data' events (public Node API, no `ws` internals), so a
   * message that claims or streams more is refused while it arrives, not
   * once `ws` has buffered it whole: past `maxBytes` (plus a little for
   * WebSocket framing) reading stops and the session hears
   * MB_ERR_FRAME_TOO_LARGE (close 1009). A whole message larger than
   * `maxBytes` after permessage-deflate inflation is refused the same way.
   * The gateway-wide `maxPayload` (ws's public option) bounds every message.
   */
  limitInput(maxBytes: number | undefined): void {
    if (maxBytes === undefined) {
      this.inputLimit = undefined;
      this.socket.off('data', this.countInput);
      return;
    }
    if (this.inputLimit === undefined) this.socket.on('data', this.countInput);
    this.inputLimit = maxBytes;
  }

  /** Stops reading and has the session refuse the connection (MB_ERR_FRAME_TOO_LARGE, close 1009). */
  private refuseInput(message: string): void {
    this.overLimit = true;
    this.ws.pause();
    this.hooks.protocolError('MB_ERR_FRAME_TOO_LARGE', message);
  }

  /**
   * The gateway's keepalive tick (every pingInterval ms): sends a ws-level
   * ping when the rule asks for one; false when the connection is stale
   * (nothing received since the last unanswered ping).
   */
  keepAlive(now: number): boolean {
    if (this.keepalive === undefined) return true;
    const a = this.keepalive.tick(now, this.lastRx, this.received);
    if (a.do === 'stale') return false;
    // A 'probe' (the timer was frozen) is a ping too; the next tick judges it.
    if (a.do !== 'wait' && this.ws.readyState === 1) this.ws.ping();
    return true;
  }

  private heard(): void {
    this.received++;
    this.lastRx = Date.now();
  }

  /**
   * No extension was negotiated: messages are written to the socket here,
   * each frame header and its message's chunks, a tick's messages in one
   * writev (writeBatch, as a TCP wire writes), not concatenated into a fresh
   * buffer per message for `ws.send` (a copy and an allocation per message).
   * `ws`'s own frames land between whole messages: its sender writes
   * synchronously while nothing is queued in it (always, without
   * permessage-deflate). A pong or close frame it sends during a tick goes
   * before the tick's messages; after a close frame they are not sent.
   */
  private readonly direct: boolean;

  /**
   * Cuts the batch as one message (SPEC §2); at the tick's end (`final`)
   * writes the tick's messages. Direct: in one write (writeBatch: one
   * writev), whose callback says its messages were all taken; at a close
   * deadline destroy() counts exactly which of them the system took whole,
   * from the bytes it took (as TcpTransport does). With an extension the
   * message goes to `ws.send` at once.
   */
  private flush(final = false): void {
    if (this.batch.count > 0) {
      if (this.ws.readyState === 1) this.cut();
      else this.dropBatch();
    }
    if (final && this.tickMessages > 0) this.writeTick();
  }

  /**
   * The batch once nothing can be sent (`ws` closed or is closing): its
   * events lost, its bytes no longer `buffered`. Kept, they held the session's
   * queue non-empty for ever, and a client that sent its close frame was cut
   * as a slow consumer at the write deadline.
   */
  private dropBatch(): void {
    this.batch.take();
    this.lostAfter += this.batchEvents;
    this.batchEvents = 0;
  }

  private cut(): void {
    const bytes = this.batch.bytes;
    const chunks = this.batch.take();
    this.messages.push(this.batchEvents);
    this.inWire += this.batchEvents;
    this.batchEvents = 0;
    if (this.direct) {
      const head = binaryHead(bytes);
      this.tickParts.push(head, ...chunks);
      this.tickMessages++;
      this.tickBytes += head.length + bytes;
      this.messageEnds.push(this.tickBytes);
      return;
    }
    // A lone frame is a view of its input message: copied once the socket is backed up (see TcpTransport).
    const msg = chunks.length === 1 ? (this.ws.bufferedAmount > 0 ? detached(chunks[0]!) : chunks[0]!) : Buffer.concat(chunks, bytes);
    this.writes.push(1);
    // Uncompressed when refusing input: written at once, before the close frame and the FIN that end() follows it with.
    this.ws.send(msg, { binary: true, compress: this.compress && !this.overLimit }, this.sent);
  }

  private writeTick(): void {
    const parts = this.tickParts;
    const bytes = this.tickBytes;
    const n = this.tickMessages;
    this.tickParts = [];
    this.tickMessages = this.tickBytes = 0;
    // `ws` answered a close (or refused input) during the tick: nothing follows its close frame (RFC 6455
    // 5.5.1). Those messages are lost, and leave the table of messages in flight: their ends are relative
    // to the tick, and a destroy would have compared them with the bytes the socket took and counted
    // them sent (19 of 20 events, the review's test).
    if (this.ws.readyState !== 1) {
      for (let i = 0; i < n; i++) {
        const k = this.messages.pop()!;
        this.messageEnds.pop();
        this.inWire -= k;
        this.lostAfter += k;
      }
      return;
    }
    const at = this.socket.bytesWritten ?? 0;
    for (let i = this.messageEnds.length - n; i < this.messageEnds.length; i++) this.messageEnds[i]! += at;
    this.writes.push(n);
    writeBatch(this.socket, parts, bytes, this.sent);
  }

  private compactMessages(): void {
    this.messages.splice(0, this.messagesAt);
    this.messageEnds.splice(0, this.messagesAt);
    this.messagesAt = 0;
  }

  private onMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    this.heard();
    // Read after end() too: the close frame this side sent ends its output only. What the client sent before
    // it read that close (or the GOODBYE before it) is the session's to handle or ignore (SPEC 10.7: a
    // draining node routes it); the client's own close frame ends the connection ('close').
    if (!isBinary) {
      this.closeCode = WS_CLOSE.UNSUPPORTED_DATA;
      this.hooks.protocolError('MB_ERR_UNEXPECTED_FRAME', 'text WebSocket message (binary messages only)');
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? new Uint8Array(data) : data;
    if (this.inputLimit !== undefined && bytes.length > this.inputLimit) {
      this.refuseInput(`message of ${bytes.length} bytes before the handshake, limit ${this.inputLimit}`);
      return;
    }
    // The decoder sees the bytes first so a corrupt header gets its own error code.
    this.events.data(bytes);
    const problem = wholeFrames(bytes);
    if (problem !== undefined) this.hooks.protocolError('MB_ERR_TRUNCATED', problem);
  }
}

/** The fields of ws's Receiver read by wsHeldBytes (ws 8; absent in another version: 0 is reported). */
interface WsReceiverState {
  _bufferedBytes?: number;
  _fragments?: Buffer[];
  /** Bytes written to the Receiver (a Writable) it has not taken yet: what came while it inflated. */
  writableLength?: number;
  _extensions?: Record<string, unknown>;
  _write?: (chunk: Buffer, enc: BufferEncoding, cb: (err?: Error | null) => void) => void;
  decompress?: (data: Buffer, cb: (err?: Error | null) => void) => void;
}

/**
 * With permessage-deflate, ws inflates a compressed frame asynchronously
 * (zlib), after the socket read that brought it, and only then adds the
 * inflated bytes to the message's fragments: what it holds is reported again
 * each time the Receiver finished with what it was given (its write
 * callback), or those fragments would never be charged (about 1000:1 for
 * zeros: 1 KB on the wire held 900 KB uncharged). And pausing the socket
 * did not stop ws inflating the frames of a read it had already taken (one
 * read of compressed frames is many reads' worth once inflated): while the
 * connection is paused, the next frame's inflation waits, and the function
 * returned runs it once the connection reads again. Only a connection that
 * negotiated compression pays for either.
 */
function reportInflated(ws: WebSocket, report: () => void): (() => void) | undefined {
  const r = (ws as unknown as { _receiver?: WsReceiverState })._receiver;
  const write = r?._write;
  const decompress = r?.decompress;
  if (r === undefined || write === undefined || decompress === undefined || r._extensions?.['permessage-deflate'] === undefined) return undefined;
  r._write = (chunk, enc, cb) =>
    write.call(r, chunk, enc, (err) => {
      cb(err);
      report();
    });
  let waiting: (() => void) | undefined;
  r.decompress = (data, cb) => {
    // The frame inflated last is charged first (ws goes on to the next frame before its write callback): past the budget, this one waits.
    report();
    if (ws.isPaused) waiting = () => decompress.call(r, data, cb);
    else decompress.call(r, data, cb);
  };
  return () => {
    const w = waiting;
    if (w === undefined || ws.isPaused) return;
    waiting = undefined;
    // A closed connection has nothing more to deliver (ws released its inflater).
    if (ws.readyState === 1) w();
  };
}

/**
 * Bytes `ws` holds for a message it has not delivered: what it read and has
 * not parsed (an unfinished WebSocket frame, or bytes queued while it
 * inflates) and the fragments of an unfinished message (inflated ones
 * included, once inflated: reportInflated). ws has no public API for it: its Receiver's fields are
 * read, never written (core/test/security/input-budget.test.ts and input-budget-holders.test.ts fail if they move).
 */
export function wsHeldBytes(ws: WebSocket): number {
  const r = (ws as unknown as { _receiver?: WsReceiverState })._receiver;
  if (r === undefined) return 0;
  let n = (r._bufferedBytes ?? 0) + (r.writableLength ?? 0);
  const f = r._fragments;
  if (f !== undefined) for (let i = 0; i < f.length; i++) n += f[i]!.length;
  return n;
}

/** Entries of the in-flight tables taken off the front before they are compacted (a socket that stays backed up never empties them). */
const COMPACT_AT = 1024;

/**
 * The header of an unmasked, unfragmented binary WebSocket frame carrying
 * `length` payload bytes (RFC 6455 §5.2: FIN + opcode 2, then a 7-bit,
 * 16-bit or 64-bit length; a server never masks, §5.1).
 */
export function binaryHead(length: number): Buffer {
  const h = Buffer.allocUnsafe(length < 126 ? 2 : length < 65536 ? 4 : 10);
  h[0] = 0x82;
  if (length < 126) h[1] = length;
  else if (length < 65536) {
    h[1] = 126;
    h.writeUInt16BE(length, 2);
  } else {
    h[1] = 127;
    h.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    h.writeUInt32BE(length >>> 0, 6);
  }
  return h;
}

/** WebSocket frame headers (2–14 bytes each) allowed on top of a limitInput bound. */
const FRAMING_SLACK = 4096;


/**
 * SPEC §2: a message holds whole frames. Walks the length prefixes; returns
 * why the message is malformed, or undefined. The decoder checks the rest.
 */
export function wholeFrames(b: Uint8Array): string | undefined {
  let off = 0;
  while (off < b.length) {
    if (b.length - off < 4) return `message ends inside a length prefix at byte ${off}`;
    const next = off + 4 + readU32(b, off);
    if (next > b.length) return `message of ${b.length} bytes ends inside a frame that needs ${next - off} from byte ${off}`;
    off = next;
  }
  return undefined;
}

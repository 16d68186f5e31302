import type { Socket } from 'node:net';
import { TickBatch } from './tick-batch.js';
import type { Transport, TransportEvents } from './transport.js';
import { eventsIn, eventsPast, untakenBytes } from './unsent-events.js';
import { writeBatch } from './socket-write.js';

/**
 * A Transport over a TCP socket. Frames written during one tick (everything one
 * input chunk routes here) are held in an array and handed to the socket
 * once, on the next tick, by `writeBatch` (socket-write.ts: small frames
 * concatenated into one write, large ones one writev without a copy, views
 * copied once the socket is backed up). TickBatch joins the frames of one
 * input chunk into one view, which then usually covers most of that chunk
 * and is kept as is: a reader that keeps up costs no copy; at most one batch
 * of views per connection (the write that found the socket empty) is held
 * uncopied.
 *
 * Progress: each batch write carries a callback that reports `drain` once
 * the kernel took it — Node emits 'drain' only after a write() that
 * returned false, so without it a receiver whose high-water mark was
 * reached by one batch the kernel took at once would never wake its
 * waiting publishers.
 */
export class TcpTransport implements Transport {
  readonly kind = 'tcp' as const;
  readonly remote: string;
  private readonly pending = new TickBatch(() => this.flush(true));
  private readonly events: TransportEvents;

  /** Bytes handed to the socket since it opened (stream offsets count from 0). */
  private handed = 0;
  /**
   * The batches handed to the socket whose write has not called back yet,
   * oldest first: the chunks the socket holds (no others: a batch leaves
   * when its write is done), for counting at a close what never went out.
   */
  private readonly inWrite: WrittenBatch[] = [];
  /** Events of frames that never reached the socket (written after it was gone, or dropped with the tick's batch). */
  private lostAfter = 0;
  /** Bytes the system had taken when destroy() cut the socket (then exactly; see takenBytes). */
  private takenAtDestroy: number | undefined;
  /** A batch's write is done: it leaves inWrite (unless the socket is gone: then it is counted at the close). */
  private readonly batchWritten = (err?: Error | null): void => {
    if (err || this.socket.destroyed) return;
    const w = this.inWrite;
    const b = w.shift();
    // Emptied, its room given back (length 0 drops the elements' store; shift() kept it): an idle connection holds none.
    if (w.length === 0) w.length = 0;
    if (b?.notify) this.events.drain();
  };

  private flush(notify: boolean): void {
    const bytes = this.pending.bytes;
    const chunks = this.pending.take();
    const n = chunks.length;
    if (n === 0) return;
    const s = this.socket;
    if (s.destroyed || s.writableEnded) {
      this.lostAfter += eventsPast(chunks, 0, -1);
      return;
    }
    const held = writeBatch(s, chunks, bytes, this.batchWritten);
    this.inWrite.push({ start: this.handed, chunks: held, notify });
    this.handed += bytes;
  }

  constructor(
    private readonly socket: Socket,
    events: TransportEvents,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.events = events;
    // Listeners shared by every socket, which find the owner's events on the socket (as ws does with
    // its sockets): no closure per connection (issue #15 footprint: an idle connection's heap).
    (socket as OwnedSocket)[EVENTS] = events;
    socket.setNoDelay(true);
    socket.on('data', onSocketData);
    socket.on('drain', onSocketDrain);
    socket.on('close', onSocketClose);
    // Errors (ECONNRESET, EPIPE) are followed by 'close'; the session handles that.
    socket.on('error', ignore);
  }

  /** Bytes not yet taken by the kernel: the socket's buffer plus this tick's frames. */
  get buffered(): number {
    return this.socket.writableLength + this.pending.bytes;
  }

  /**
   * Events handed over that the system had not taken whole when the socket
   * closed: those past the bytes it took (exactly, for a socket this
   * transport destroyed: the close deadline; for one that failed, every
   * batch whose write had not called back), and those never handed to the
   * socket. Walks the unsent bytes: read once, at the close.
   */
  get unsentEvents(): number {
    const w = this.inWrite;
    // A socket that failed (a reset) threw away what it held: only writes that called back count as sent.
    const taken = this.takenAtDestroy ?? (this.socket.errored ? (w[0]?.start ?? this.handed) : this.handed - this.socket.writableLength);
    let lost = this.lostAfter;
    for (const b of w) lost += eventsPast(b.chunks, b.start, taken);
    return lost;
  }

  /** Bytes of the stream the system has taken: those handed over, less what the socket holds untaken (unsent-events.ts). */
  private takenBytes(): number {
    return this.handed - untakenBytes(this.socket);
  }

  get writable(): boolean {
    return !this.socket.destroyed && !this.socket.writableEnded;
  }

  write(chunk: Uint8Array, tail?: Uint8Array): void {
    if (this.socket.destroyed) {
      this.lostAfter += eventsIn(chunk);
      return;
    }
    this.pending.add(chunk);
    if (tail !== undefined) this.pending.add(tail);
  }

  writeRange(buf: Uint8Array, start: number, end: number): void {
    if (this.socket.destroyed) {
      this.lostAfter += eventsIn(buf, start, end);
      return;
    }
    this.pending.addRange(buf, start, end);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.flush(false);
    this.socket.end();
  }

  destroy(): void {
    this.lostAfter += eventsPast(this.pending.take(), 0, -1);
    if (!this.socket.destroyed) this.takenAtDestroy = this.takenBytes();
    this.socket.destroy();
  }
}

function ignore(): void {}

const EVENTS = Symbol('meshbus.transportEvents');
type OwnedSocket = Socket & { [EVENTS]: TransportEvents };

function onSocketData(this: OwnedSocket, chunk: Buffer): void {
  this[EVENTS].data(chunk);
}

function onSocketDrain(this: OwnedSocket): void {
  this[EVENTS].drain();
}

function onSocketClose(this: OwnedSocket): void {
  this[EVENTS].close();
}

/** One flush's bytes as the socket got them: whole frames from stream offset `start`. */
interface WrittenBatch {
  start: number;
  chunks: Uint8Array[];
  /** Report `drain` when its write is done (a tick's flush; not the last one of end()). */
  notify: boolean;
}

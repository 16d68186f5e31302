import type { Socket } from 'node:net';
import { TickBatch } from './tick-batch.js';
import type { Transport, TransportEvents } from './transport.js';

/**
 * Frames smaller than this on average are gathered into one buffer per tick
 * (one copy, one write); larger ones go out as a writev without a copy.
 */
const GATHER_MAX_AVG = 1024;

/**
 * A Transport over a TCP socket. Frames written during one tick (everything one
 * input chunk routes here) are held in an array and handed to the socket
 * once, on the next tick: small frames concatenated into a single write,
 * large ones corked into a single writev. Measured (bench/README.md): the
 * per-chunk stream bookkeeping and the per-iovec cost of a writev of
 * hundreds of small frames were the largest share of a node's CPU.
 *
 * Memory: a frame handed over uncopied is a view of the input chunk it
 * arrived in, and keeps that whole chunk alive while the socket holds it.
 * Once the socket is backed up (bytes from earlier writes still unsent),
 * every chunk that covers less than half of its buffer is copied before the
 * socket keeps it (`detached`), so what a slow reader pins is at most twice
 * what the limits count. TickBatch joins the frames of one input chunk into
 * one view, which then usually covers most of that chunk and is kept as is.
 * A reader that keeps up costs no copy; at most one batch of views per
 * connection (the write that found the socket empty) is held uncopied.
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
  private readonly written: () => void;

  /** Bytes handed to the socket since it opened. */
  private handed = 0;
  /**
   * Where each event handed over (countEvents) ends in the byte stream, with
   * how many events end there (a run is one entry): pairs [end, n] from
   * `endsAt`, oldest first. Entries the system took are trimmed at each flush.
   */
  private readonly ends: number[] = [];
  private endsAt = 0;
  /** Bytes the system had taken at the last flush (trim). */
  private confirmed = 0;
  /** Events counted while the socket was already gone (nothing handed over). */
  private lostAfter = 0;
  /** Bytes the system had taken when destroy() cut the socket (then exactly; see takenBytes). */
  private takenAtDestroy: number | undefined;

  private flush(notify: boolean): void {
    const bytes = this.pending.bytes;
    const chunks = this.pending.take();
    const n = chunks.length;
    if (n === 0) return;
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    this.trim(this.handed - s.writableLength);
    this.handed += bytes;
    const cb = notify ? this.written : undefined;
    const backedUp = s.writableLength > 0;
    if (n === 1) s.write(backedUp ? detached(chunks[0]!) : chunks[0]!, cb);
    else if (bytes <= n * GATHER_MAX_AVG) s.write(Buffer.concat(chunks, bytes), cb);
    else {
      s.cork();
      for (let i = 0; i < n; i++) {
        const c = chunks[i]!;
        s.write(backedUp ? detached(c) : c, i === n - 1 ? cb : undefined);
      }
      s.uncork();
    }
  }

  constructor(
    private readonly socket: Socket,
    events: TransportEvents,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    // The owner's handlers go to the socket as they are: no wrapper closures
    // per connection (issue #15 footprint: an idle connection's heap).
    this.written = events.drain;
    socket.setNoDelay(true);
    socket.on('data', events.data);
    socket.on('drain', events.drain);
    socket.on('close', events.close);
    // Errors (ECONNRESET, EPIPE) are followed by 'close'; the session handles that.
    socket.on('error', ignore);
  }

  /** Bytes not yet taken by the kernel: the socket's buffer plus this tick's frames. */
  get buffered(): number {
    return this.socket.writableLength + this.pending.bytes;
  }

  countEvents(n: number, back = 0): void {
    if (this.socket.destroyed) this.lostAfter += n;
    else this.ends.push(this.handed + this.pending.bytes - back, n);
  }

  /**
   * Events handed over that the system had not taken whole when the socket
   * closed: those past the bytes it took (exactly, for a socket this
   * transport destroyed: the close deadline; for one that failed, those past
   * what the last flush saw taken), and those of frames never handed to the
   * socket.
   */
  get unsentEvents(): number {
    // A socket that failed (a reset) threw away what it held: only what a flush saw taken before counts as sent.
    const taken = this.takenAtDestroy ?? (this.socket.errored ? this.confirmed : this.handed - this.socket.writableLength);
    let lost = this.lostAfter;
    for (let i = this.endsAt; i < this.ends.length; i += 2) if (this.ends[i]! > taken) lost += this.ends[i + 1]!;
    return lost;
  }

  /** Forgets the events that end within the first `taken` bytes: the system has them. */
  private trim(taken: number): void {
    this.confirmed = taken;
    const e = this.ends;
    let i = this.endsAt;
    while (i < e.length && e[i]! <= taken) i += 2;
    if (i === e.length) {
      e.length = 0;
      i = 0;
    } else if (i > 2048 && i * 2 > e.length) {
      e.splice(0, i);
      i = 0;
    }
    this.endsAt = i;
  }

  /**
   * Bytes of the stream the system has taken: those handed over, less what
   * the socket still holds. Of the write in progress, libuv's queue says
   * how much is left (a write the system took a part of: the events whole
   * in that part reached it); without those fields (another runtime), the
   * whole write counts as not taken.
   */
  private takenBytes(): number {
    const s = this.socket as Socket & { _writableState?: { writelen?: unknown }; _handle?: { writeQueueSize?: unknown } | null };
    const inFlight = s._writableState?.writelen;
    const left = s._handle?.writeQueueSize;
    const untaken = typeof inFlight === 'number' && typeof left === 'number' && left <= inFlight ? s.writableLength - inFlight + left : s.writableLength;
    return this.handed - untaken;
  }

  get writable(): boolean {
    return !this.socket.destroyed && !this.socket.writableEnded;
  }

  write(chunk: Uint8Array, tail?: Uint8Array): void {
    if (this.socket.destroyed) return;
    this.pending.add(chunk);
    if (tail !== undefined) this.pending.add(tail);
  }

  writeRange(buf: Uint8Array, start: number, end: number): void {
    if (this.socket.destroyed) return;
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
    this.pending.take();
    if (!this.socket.destroyed) this.takenAtDestroy = this.takenBytes();
    this.socket.destroy();
  }
}

function ignore(): void {}

/**
 * `chunk` itself when it owns (most of) its memory, else a copy: a small
 * view must not keep a large input chunk alive while it waits in a buffer.
 */
export function detached(chunk: Uint8Array): Uint8Array {
  return chunk.byteLength * 2 >= chunk.buffer.byteLength ? chunk : Buffer.from(chunk);
}

import { copyBytes } from '@meshbus/proto';
import type { Transport } from './transport.js';
import type { SlowPolicy } from './subscriber.js';

/**
 * Everything a session sends, with one bound. Frames go straight to the
 * wire while it keeps up; past `highWater` bytes buffered in the wire they
 * wait in a backlog of copies (so a slow reader pins no input chunks; the
 * wire copies what it must hold too, see TcpTransport). Every byte queued for the
 * connection — events and control frames alike (ERROR, ACK, PONG, WELCOME,
 * GOODBYE) — counts against `maxPending`:
 * - an event past the bound: 'drop' discards the oldest queued events (and
 *   the event itself if that is not enough), 'disconnect' reports a slow consumer;
 * - a control frame past the bound is never dropped silently: the connection
 *   is a slow consumer whatever its policy.
 * Reporting a slow consumer sends one last frame (`sendFinal`) and the queue
 * refuses everything afterwards, so closing costs at most that frame.
 */
export class OutboundQueue {
  private backlog: Uint8Array[] = [];
  private head = 0;
  private backlogBytes = 0;
  /** Bytes of control frames in the backlog: never dropped, so not freed by dropping. */
  private controlBytes = 0;
  /** Backlog copies of control frames. */
  /** Queued control frames (never dropped); made on the first one, so an idle connection carries none. */
  private controls: WeakSet<Uint8Array> | undefined;
  /** Every backlog entry before this index is a control frame or already dropped: where the drop scan starts. */
  private dropFrom = 0;
  /** Set by sendFinal: nothing more is queued. */
  private sealed = false;
  /** Time the wire last made progress (or had nothing to send). */
  lastProgress = Date.now();
  dropped = 0;

  constructor(
    private readonly transport: Transport,
    private readonly highWater: number,
    private readonly maxPending: number,
    public policy: SlowPolicy,
    private readonly onSlow: () => void,
  ) {}

  /** At least `highWater` bytes unsent: publishers feeding this queue should wait. */
  get congested(): boolean {
    return this.backlogBytes > 0 || this.transport.buffered >= this.highWater;
  }

  get pending(): number {
    return this.backlogBytes + this.transport.buffered;
  }

  /**
   * Queues an event — `chunk`, or `chunk` then `tail` as one frame (a
   * rewritten header and the rest as received): kept or dropped together, so
   * a drop never leaves half a frame. False when dropped or the consumer is slow.
   */
  send(chunk: Uint8Array, tail?: Uint8Array): boolean {
    if (this.sealed) return false;
    const size = tail === undefined ? chunk.length : chunk.length + tail.length;
    if (this.direct(chunk, tail, size)) return true;
    if (this.backlogBytes + this.transport.buffered + size > this.maxPending) {
      if (this.policy === 'disconnect') {
        this.onSlow();
        return false;
      }
      this.dropOldestEvents(size);
      if (this.backlogBytes + this.transport.buffered + size > this.maxPending) {
        this.dropped++;
        return false;
      }
    }
    this.enqueue(chunk, tail, size);
    return true;
  }

  /**
   * Queues a control frame (ERROR, ACK, PONG, WELCOME, SubAck…) in order with
   * the events. Never dropped: past `maxPending` a 'drop' queue drops its
   * oldest events to make room; when that is not enough (or the policy is
   * 'disconnect') the consumer is reported slow instead and the frame is not
   * queued. False when not queued.
   */
  sendControl(chunk: Uint8Array): boolean {
    if (this.sealed) return false;
    if (this.direct(chunk, undefined, chunk.length)) return true;
    // A 'drop' connection makes room by dropping events first; only control frames past the bound make it slow.
    if (this.policy === 'drop' && this.backlogBytes + this.transport.buffered + chunk.length > this.maxPending) this.dropOldestEvents(chunk.length);
    if (this.backlogBytes + this.transport.buffered + chunk.length > this.maxPending) {
      this.onSlow();
      return false;
    }
    (this.controls ??= new WeakSet()).add(this.enqueue(chunk, undefined, chunk.length));
    this.controlBytes += chunk.length;
    return true;
  }

  /**
   * The last frame before closing (fatal ERROR, GOODBYE). Goes behind what
   * waits when that fits the bound; otherwise what waits is discarded (the
   * reader is too slow to ever get it) and the frame goes alone. Afterwards
   * the queue takes nothing more, so closing adds at most this one frame.
   */
  sendFinal(chunk: Uint8Array): void {
    if (this.sealed) return;
    this.sealed = true;
    if (this.backlogBytes + this.transport.buffered + chunk.length > this.maxPending) this.dropped += this.backlog.length - this.head;
    // Within the bound, what waits goes to the wire now: the wire flushes it before it ends.
    else for (let i = this.head; i < this.backlog.length; i++) this.transport.write(this.backlog[i]!);
    this.backlog = [];
    this.head = 0;
    this.backlogBytes = 0;
    this.controlBytes = 0;
    this.dropFrom = 0;
    this.transport.write(chunk);
  }

  /** The wire drained: move backlog into it. */
  onDrain(): void {
    this.lastProgress = Date.now();
    this.flushBacklog();
  }

  /** True when data has waited longer than `deadline` ms without the wire taking any. */
  stalled(now: number, deadline: number): boolean {
    return this.pending > 0 && now - this.lastProgress > deadline;
  }

  /** Hands the frame to the wire when nothing waits and the wire is below the mark. */
  private direct(chunk: Uint8Array, tail: Uint8Array | undefined, size: number): boolean {
    if (this.backlogBytes !== 0) return false;
    const buffered = this.transport.buffered;
    if (buffered === 0) this.lastProgress = Date.now();
    // An empty wire takes any frame, even one larger than the mark: nothing would ever drain it otherwise.
    if (buffered === 0 || buffered + size <= this.highWater) {
      this.transport.write(chunk);
      if (tail !== undefined) this.transport.write(tail);
      return true;
    }
    return false;
  }

  /** Backlog entries are copies (one per frame): they pin no input chunk. */
  private enqueue(chunk: Uint8Array, tail: Uint8Array | undefined, size: number): Uint8Array {
    let c: Uint8Array;
    if (tail === undefined) c = copyBytes(chunk);
    else {
      c = new Uint8Array(size);
      c.set(chunk, 0);
      c.set(tail, chunk.length);
    }
    this.backlog.push(c);
    this.backlogBytes += size;
    return c;
  }

  /**
   * 'drop' policy: frees room for `size` more bytes by dropping the oldest
   * queued events, skipping control frames (never dropped). Amortised O(1):
   * the scan resumes where the last one stopped.
   */
  private dropOldestEvents(size: number): void {
    const b = this.backlog;
    let i = Math.max(this.dropFrom, this.head);
    while (this.backlogBytes > this.controlBytes && i < b.length && this.backlogBytes + this.transport.buffered + size > this.maxPending) {
      const old = b[i]!;
      if (old.length !== 0 && !this.controls?.has(old)) {
        b[i] = EMPTY;
        this.backlogBytes -= old.length;
        this.dropped++;
      }
      i++;
    }
    this.dropFrom = i;
    while (this.head < b.length && b[this.head]!.length === 0) this.head++;
  }

  private flushBacklog(): void {
    while (this.head < this.backlog.length && this.transport.buffered < this.highWater) {
      const c = this.backlog[this.head]!;
      this.backlog[this.head++] = EMPTY;
      if (c.length === 0) continue;
      this.backlogBytes -= c.length;
      if (this.controlBytes !== 0 && this.controls!.has(c)) this.controlBytes -= c.length;
      this.transport.write(c);
    }
    if (this.head === this.backlog.length) {
      this.backlog = [];
      this.head = 0;
      this.dropFrom = 0;
    } else if (this.head > 1024 && this.head * 2 > this.backlog.length) {
      this.backlog = this.backlog.slice(this.head);
      this.dropFrom = Math.max(0, this.dropFrom - this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);

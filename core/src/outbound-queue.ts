import { copyBytes } from '@meshbus/proto';
import type { Wire } from './wire.js';
import type { SlowPolicy } from './subscriber.js';

/**
 * What a session sends, with a bound. Frames go straight to the wire while
 * it keeps up; past `highWater` bytes buffered in the wire they wait in a
 * backlog of copies (so a slow reader pins no input chunks). Past
 * `maxPending` bytes in all, the policy decides: 'drop' discards the oldest
 * backlog entries, 'disconnect' reports a slow consumer. Memory per
 * connection is bounded either way.
 */
export class OutboundQueue {
  private backlog: Uint8Array[] = [];
  private head = 0;
  private backlogBytes = 0;
  /** Time the wire last made progress (or had nothing to send). */
  lastProgress = Date.now();
  dropped = 0;

  constructor(
    private readonly wire: Wire,
    private readonly highWater: number,
    private readonly maxPending: number,
    public policy: SlowPolicy,
    private readonly onSlow: () => void,
  ) {}

  /** Past the high-water mark: publishers feeding this queue should wait. */
  get congested(): boolean {
    return this.backlogBytes > 0 || this.wire.buffered >= this.highWater;
  }

  get pending(): number {
    return this.backlogBytes + this.wire.buffered;
  }

  /** Sends control frames and events alike; returns false when the event was dropped or the consumer is slow. */
  send(chunk: Uint8Array): boolean {
    if (this.backlogBytes === 0) {
      const buffered = this.wire.buffered;
      if (buffered === 0) this.lastProgress = Date.now();
      // An empty wire takes any frame, even one larger than the mark: nothing would ever drain it otherwise.
      if (buffered === 0 || buffered + chunk.length <= this.highWater) {
        this.wire.write(chunk);
        return true;
      }
    }
    if (this.backlogBytes + this.wire.buffered + chunk.length > this.maxPending) {
      if (this.policy === 'disconnect') {
        this.onSlow();
        return false;
      }
      while (this.backlogBytes > 0 && this.backlogBytes + this.wire.buffered + chunk.length > this.maxPending) {
        const old = this.backlog[this.head]!;
        this.backlog[this.head++] = EMPTY;
        this.backlogBytes -= old.length;
        this.dropped++;
      }
      if (this.backlogBytes + this.wire.buffered + chunk.length > this.maxPending) {
        this.dropped++;
        return false;
      }
    }
    this.backlog.push(copyBytes(chunk));
    this.backlogBytes += chunk.length;
    return true;
  }

  /** Sends a frame that must go out even past the limits (ERROR, GOODBYE). */
  sendUrgent(chunk: Uint8Array): void {
    this.flushBacklog();
    this.wire.write(chunk);
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

  private flushBacklog(): void {
    while (this.head < this.backlog.length && this.wire.buffered < this.highWater) {
      const c = this.backlog[this.head]!;
      this.backlog[this.head++] = EMPTY;
      this.backlogBytes -= c.length;
      this.wire.write(c);
    }
    if (this.head === this.backlog.length) {
      this.backlog = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.backlog.length) {
      this.backlog = this.backlog.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = new Uint8Array(0);

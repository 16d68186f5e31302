import type { Frame } from '@meshbus/proto';
import { ReceiverWaiters, SourceThrottle } from './flow-control.js';
import type { DropTag, OutboundQueue } from './outbound-queue.js';
import type { EventSource, Subscriber, Throttled } from './subscriber.js';

/**
 * What client sessions and peer links share: an outbound queue they deliver
 * into, and both sides of flow control (as a receiver, the sources waiting
 * for it; as a source, the receivers it waits for). Subclasses say how to
 * pause and resume their input, and own their queue.
 */
export abstract class FlowEndpoint implements Subscriber, EventSource {
  abstract readonly kind: 'client' | 'peer' | 'leaf' | 'gateway';
  abstract readonly uid: number;
  abstract readonly echo: boolean;
  abstract get label(): string;
  abstract deliver(frame: Frame, sid: number, drop?: DropTag): void;

  protected abstract readonly out: OutboundQueue;
  /** Stop / restart reading from the other end. */
  protected abstract pauseInput(): void;
  protected abstract resumeInput(): void;

  /**
   * Both sides of flow control, made on first use: most connections never
   * wait for a receiver nor have a source waiting for them, and an idle
   * connection should cost no more than it must (issue #15 footprint).
   */
  private waiters: ReceiverWaiters | undefined;
  private throttle: SourceThrottle | undefined;

  private sourceThrottle(): SourceThrottle {
    return (this.throttle ??= new SourceThrottle(
      this,
      () => {
        this.flowHeld(false);
        this.pauseInput();
      },
      () => this.resumeInput(),
    ));
  }

  /** Flow control paused this source's input, or (`stalled`) gave up on its receivers at maxStall: the subclass counts it node-wide (`flowPauses`, `flowStalls`). */
  protected flowHeld(_stalled: boolean): void {}

  /** Bytes queued toward the other end, and kept for it outside the queue (reserve). */
  get pending(): number {
    return this.out.pending + this.out.held;
  }

  /**
   * Counts `size` bytes kept for this connection outside its queue against
   * its bound (OutboundQueue.reserve): false when they do not fit, and then
   * the caller must not keep them. Give them back with unreserve().
   */
  reserve(size: number): boolean {
    return this.out.reserve(size);
  }

  unreserve(size: number): void {
    this.out.unreserve(size);
  }

  /** Events dropped from the queue (droppable events past the bound, SPEC §10.6). */
  get dropped(): number {
    return this.out.dropped;
  }

  /** At least the high-water mark is unsent (whether or not sources still wait for it: see congested). */
  get backedUp(): boolean {
    return this.out.congested;
  }

  /**
   * True while sources should wait for this receiver: it has at least the
   * high-water mark unsent and has not overrun. Overrun lasts only until the
   * queue falls below the mark. (A delivery for 'drop' subscriptions never
   * waits on it: the node checks this only after firm deliveries, SPEC §10.6.)
   */
  get congested(): boolean {
    if (!this.out.congested) {
      if (this.waiters?.overrun) this.waiters.overrun = false;
      return false;
    }
    return !this.waiters?.overrun;
  }

  /** Times this endpoint, as a source, was paused for a receiver / gave up after maxStall. */
  get flowPauses(): number {
    return this.throttle?.pauses ?? 0;
  }

  /** True while, as a source, this endpoint's input is paused for a receiver. */
  protected get sourceBlocked(): boolean {
    return this.throttle?.blocked ?? false;
  }

  get flowStalls(): number {
    return this.throttle?.stalls ?? 0;
  }

  addWaiter(w: Throttled): void {
    (this.waiters ??= new ReceiverWaiters()).add(w);
  }

  markOverrun(): void {
    (this.waiters ??= new ReceiverWaiters()).overrun = true;
  }

  /** When this receiver last drained below its mark with sources waiting (Date.now(); 0: never). */
  get drainedAt(): number {
    return this.waiters?.drainedAt ?? 0;
  }

  /**
   * Flow control: stop reading from this source until `receiver` catches up,
   * so a burst waits instead of being dropped or overrunning the bound.
   */
  blockOn(receiver: Subscriber): void {
    if (receiver !== this) this.sourceThrottle().blockOn(receiver);
  }

  unblock(receiver: Subscriber): void {
    this.throttle?.unblock(receiver);
  }

  /**
   * The wire took queued bytes (a 'drain' event, a write the kernel took
   * whole, a WebSocket send callback): move more in, and wake the sources
   * waiting for this receiver once it is below the mark.
   */
  protected drained(): void {
    this.out.onDrain();
    if (!this.out.congested) this.waiters?.release(this);
  }

  /** Gives up on receivers that kept this source paused longer than `maxStall` (counted: flowHeld). */
  protected checkStall(now: number, maxStall: number): void {
    if (this.throttle?.check(now, maxStall)) this.flowHeld(true);
  }

  /** The endpoint is gone: nobody waits for it, it waits for nobody. */
  protected releaseFlow(): void {
    this.waiters?.release(this, true);
    this.throttle?.clear();
  }
}

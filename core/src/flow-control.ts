import type { Subscriber, Throttled } from './subscriber.js';

/**
 * The sending side of flow control: which receivers a source waits for.
 * The source stops reading from its wire while the set is non-empty, at most
 * `maxStall` ms; then the receivers are marked overrun and their own
 * slow-consumer policy applies instead. Every receiver releases its waiters
 * as soon as its unsent bytes fall below the high-water mark (or it closes),
 * so `maxStall` is only reached by a receiver that really stopped reading.
 * After such a stall the source waits for no receiver for STALL_COOLDOWN ×
 * maxStall: one congested meanwhile is overrun at once (SPEC 10.6).
 */
export class SourceThrottle {
  private readonly blockers = new Set<Subscriber & ReceiverGate>();
  private since = 0;
  /**
   * After this source gave up on receivers at `maxStall` (check), until when
   * (ms, Date.now()) a receiver found congested is overrun at once instead of
   * pausing the source again: STALL_COOLDOWN × maxStall. Without it each
   * stuck receiver made a full stall of its own, one after another: 20
   * connections that subscribed and never read, opened 0.5 s apart, held a
   * publisher (and, on another node, the whole link its events came over)
   * ~72 % of 10 s, its other subscribers' p50 latency 1 ms → 1.9 s
   * (RELIABILITY.md "Thirty-third session"). 0: none.
   */
  private cooldownUntil = 0;
  /** Times the source was paused / gave up waiting after maxStall. */
  pauses = 0;
  stalls = 0;

  constructor(
    private readonly owner: Throttled,
    private readonly pause: () => void,
    private readonly resume: () => void,
  ) {}

  get blocked(): boolean {
    return this.blockers.size > 0;
  }

  blockOn(receiver: Subscriber): void {
    const r = receiver as Subscriber & ReceiverGate;
    if (this.blockers.has(r)) return;
    if (this.cooldownUntil !== 0) {
      if (Date.now() < this.cooldownUntil) {
        r.markOverrun?.();
        return;
      }
      this.cooldownUntil = 0;
    }
    if (this.blockers.size === 0) {
      this.since = Date.now();
      this.pauses++;
      this.pause();
    }
    this.blockers.add(r);
    receiver.addWaiter(this.owner);
  }

  unblock(receiver: Subscriber): void {
    if (!this.blockers.delete(receiver as Subscriber & ReceiverGate)) return;
    if (this.blockers.size === 0) this.resume();
  }

  /** Gives up on receivers that kept this source waiting longer than `maxStall`; true when it did. */
  check(now: number, maxStall: number): boolean {
    if (this.blockers.size === 0 || now - this.since <= maxStall) return false;
    for (const r of this.blockers) r.markOverrun?.();
    this.blockers.clear();
    this.stalls++;
    this.cooldownUntil = now + STALL_COOLDOWN * maxStall;
    this.resume();
    return true;
  }

  /** The source is gone. */
  clear(): void {
    this.blockers.clear();
  }
}

/**
 * How long after a stall that ran out (maxStall) a source pauses for no
 * receiver, in maxStalls: a source is held at most one maxStall in every
 * STALL_COOLDOWN + 1, whatever the number of receivers that stop reading.
 */
export const STALL_COOLDOWN = 10;

/** Receivers that can stop holding sources back once they overran. */
export interface ReceiverGate {
  markOverrun?(): void;
}

/**
 * The receiving side: the sources waiting for this receiver, released when
 * its queue falls below the high-water mark. A receiver that held sources
 * back for maxStall is "overrun" and stops reporting congestion until its
 * queue falls below the mark again (FlowEndpoint.congested clears it).
 */
export class ReceiverWaiters {
  private waiters: Set<Throttled> | undefined;
  overrun = false;

  add(w: Throttled): void {
    (this.waiters ??= new Set()).add(w);
  }

  /** The receiver drained or closed: wake every waiting source. */
  release(receiver: Subscriber): void {
    this.overrun = false;
    const w = this.waiters;
    if (!w) return;
    this.waiters = undefined;
    for (const p of w) p.unblock(receiver);
  }
}

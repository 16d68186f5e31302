import type { Subscriber, Throttled } from './subscriber.js';

/**
 * The sending side of flow control: which receivers a source waits for.
 * The source stops reading from its wire while the set is non-empty, at most
 * `maxStall` ms; then the receivers are marked overrun and their own
 * slow-consumer policy applies instead. Every receiver releases its waiters
 * as soon as its unsent bytes fall below the high-water mark (or it closes),
 * so `maxStall` is only reached by a receiver that really stopped reading.
 * After such a stall the source waits for STALL_COOLDOWN × maxStall for no
 * receiver that has not drained lately: one congested meanwhile is overrun
 * at once (SPEC 10.6).
 */
export class SourceThrottle {
  private readonly blockers = new Set<Subscriber & ReceiverGate>();
  private since = 0;
  /**
   * Until when (ms, Date.now(); 0: not) this source waits for no receiver
   * that has not drained lately, after receivers held it a whole `maxStall`
   * (check): such a receiver is overrun at once instead. Without it each
   * stuck receiver made a full stall of its own, one after another: 20
   * connections that subscribed and never read, opened 0.5 s apart, held a
   * publisher (and, on another node, the whole link its events came over)
   * ~72 % of 10 s, its other subscribers' p50 latency 1 ms → 1.9 s
   * (RELIABILITY.md "Thirty-third session"). Receivers that drained with sources waiting within the last
   * STALL_COOLDOWN + 1 maxStalls (an honest subscriber slower than the
   * publisher) and the node's own gates (the durable store: kind 'internal')
   * still pause it, as before.
   */
  private cooldownUntil = 0;
  /** The maxStall of the last check (ms): "drained lately" is within STALL_COOLDOWN + 1 of them (an honest receiver may have drained early in the stall, the source paused since). */
  private maxStall = 1000;
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
      const now = Date.now();
      if (now >= this.cooldownUntil) this.cooldownUntil = 0;
      else if (r.kind !== 'internal' && now - (r.drainedAt ?? 0) > (STALL_COOLDOWN + 1) * this.maxStall) {
        r.markOverrun?.();
        return;
      }
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

  /** Gives up on receivers that kept this source waiting longer than `maxStall` (true when it did), then starts the cooldown. */
  check(now: number, maxStall: number): boolean {
    this.maxStall = maxStall;
    if (this.blockers.size === 0 || now - this.since <= maxStall) return false;
    let remote = false;
    for (const r of this.blockers) {
      r.markOverrun?.();
      if (r.kind !== 'internal') remote = true;
    }
    this.blockers.clear();
    this.stalls++;
    // The durable store behind (Redis slow): publishers wait for it again at its next congestion, as before.
    if (remote) this.cooldownUntil = now + STALL_COOLDOWN * maxStall;
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
 * receiver that has not drained lately, in maxStalls: receivers that stop
 * reading hold a source about one maxStall in every STALL_COOLDOWN + 1,
 * whatever their number.
 */
export const STALL_COOLDOWN = 10;

/** Receivers that can stop holding sources back once they overran. */
export interface ReceiverGate {
  markOverrun?(): void;
  /** When it last drained below its mark with sources waiting (Date.now(); 0 or absent: never). */
  readonly drainedAt?: number;
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
  /** When sources waiting for this receiver were last released by a drain (Date.now(); 0: never). */
  drainedAt = 0;

  add(w: Throttled): void {
    (this.waiters ??= new Set()).add(w);
  }

  /** The receiver drained or (`gone`) closed: wake every waiting source. */
  release(receiver: Subscriber, gone = false): void {
    this.overrun = false;
    const w = this.waiters;
    if (!w) return;
    this.waiters = undefined;
    if (!gone) this.drainedAt = Date.now();
    for (const p of w) p.unblock(receiver);
  }
}

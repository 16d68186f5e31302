import type { Subscription } from '../subscriber.js';

/** First wait before retrying a failed registration, ms; doubles up to RETRY_MAX_MS. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

/**
 * Durable queue members whose registration in Redis failed (Redis down, a
 * failover's READONLY): retried while their subscription stands, at once
 * when the command connection is ready again (`retryNow`, from its 'ready'
 * event) and on a backoff (0.5 s doubling to 30 s) in case that moment
 * passes with the registration still failing. Without it a durable queue
 * SUB made during an outage stayed in the node's routing table, and the
 * client kept it (the failure is reported, not a refusal), but it never
 * joined the queue: it got no job, ever.
 */
export class MemberRetry {
  private readonly waiting = new Set<Subscription>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private delay = RETRY_MIN_MS;
  private running = false;
  private stopped = false;

  constructor(
    /** Registers `sub` (WorkQueues.addMember); rejects when Redis did not take it. */
    private readonly join: (sub: Subscription) => Promise<void>,
    /** Whether `sub` still stands (not unsubscribed, its session open). */
    private readonly stands: (sub: Subscription) => boolean,
    /** Called once a retry registered `sub`. */
    private readonly joined: (sub: Subscription) => void,
  ) {}

  /** Subscriptions waiting to join. */
  get size(): number {
    return this.waiting.size;
  }

  add(sub: Subscription): void {
    if (this.stopped) return;
    this.waiting.add(sub);
    this.schedule();
  }

  /** `sub` left: never joined later. */
  delete(sub: Subscription): void {
    this.waiting.delete(sub);
    if (this.waiting.size > 0) return;
    this.clear();
    // A later outage starts from the first wait again, not from where this one left off.
    this.delay = RETRY_MIN_MS;
  }

  /** Redis is ready again: retry every waiting registration now, with a fresh backoff. */
  retryNow(): void {
    if (this.waiting.size === 0 || this.stopped) return;
    this.delay = RETRY_MIN_MS;
    this.clear();
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.waiting.clear();
    this.clear();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.running || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.run();
    }, this.delay);
    this.timer.unref?.();
    this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
  }

  private clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One pass over the waiting registrations; never rejects. */
  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (const sub of [...this.waiting]) {
        if (this.stopped) return;
        if (!this.stands(sub)) {
          this.waiting.delete(sub);
          continue;
        }
        try {
          await this.join(sub);
          // Left while Redis answered: addMember took it out (never added); delete() already dropped it here.
          if (this.waiting.delete(sub)) this.joined(sub);
        } catch {
          // Still failing: the next pass tries again (the rest would fail the same way now).
          break;
        }
      }
    } finally {
      this.running = false;
      if (this.waiting.size > 0) this.schedule();
      else this.delay = RETRY_MIN_MS;
    }
  }
}

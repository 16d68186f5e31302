import { SessionError, type ErrorCode } from '@meshbus/proto';

/**
 * Bounds the history replays (SUB `since`) in progress, per connection and
 * per node, so a burst of recovery requests cannot pile up reads on the
 * shared Redis. A replay holds its slot from the SUB until it has caught up
 * with the live stream (or is cancelled).
 */
export class ReplaySlots {
  private total = 0;
  private readonly perOwner = new Map<object, number>();

  constructor(
    private readonly perConnection: number,
    private readonly perNode: number,
    /** The refusal's code and what is counted (also bounds durable queue memberships, durability.ts). */
    private readonly refusal: { code: ErrorCode; what: string; hint: string } = { code: 'MB_ERR_TOO_MANY_REPLAYS', what: 'replays already in progress', hint: 'retry when one has caught up' },
  ) {}

  /** Replays in progress on the node. */
  get inProgress(): number {
    return this.total;
  }

  /**
   * Takes a slot for `owner`; returns the function that gives it back (safe
   * to call more than once). Throws SessionError MB_ERR_TOO_MANY_REPLAYS past a bound.
   */
  acquire(owner: object): () => void {
    const mine = this.perOwner.get(owner) ?? 0;
    if (mine >= this.perConnection) {
      throw new SessionError(this.refusal.code, `${mine} ${this.refusal.what} on this connection (limit ${this.perConnection}); ${this.refusal.hint}`);
    }
    if (this.total >= this.perNode) {
      throw new SessionError(this.refusal.code, `${this.total} ${this.refusal.what} on this node (limit ${this.perNode}); retry later`);
    }
    this.total++;
    this.perOwner.set(owner, mine + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.total--;
      const n = (this.perOwner.get(owner) ?? 1) - 1;
      if (n > 0) this.perOwner.set(owner, n);
      else this.perOwner.delete(owner);
    };
  }
}

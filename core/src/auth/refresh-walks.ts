/** Subscription checks a host's AUTH refreshes may make the node do per second, sustained. */
const CHECKS_PER_SECOND = 20_000;
/** Checks a host may run up before its next AUTH waits (a burst: two walks of 10,000). */
const BURST = 20_000;

/**
 * What AUTH refreshes that walk every subscription of their connection
 * (rules that differ from every set CheckedRules remembers) may cost the
 * node, per host (Subscriber.host): each walk is charged its number of
 * subscriptions, and once a host owes more than BURST, an AUTH from it waits
 * (its connection's input paused, the old token still in force) until the
 * debt is back to BURST at CHECKS_PER_SECOND. A walk is never cut short or
 * put off once the new rules are in force, so no subscription survives them.
 * Before, tokens cycling through rule sets made each AUTH walk 10,000
 * subscriptions (~17-20 ms) as fast as a client could send them.
 */
export class RefreshWalks {
  /** Checks owed per host, as of `at` (Date.now()); hosts that owe nothing are not kept. */
  private readonly owed = new Map<string, { checks: number; at: number }>();

  /** A walk of `checks` subscriptions for a connection from `host`. */
  charge(host: string, checks: number, now = Date.now()): void {
    this.owed.set(host, { checks: this.owing(host, now) + checks, at: now });
  }

  /** How long (ms) an AUTH from `host` waits before it is handled: 0 while the host owes at most BURST. */
  waitMs(host: string, now = Date.now()): number {
    const over = this.owing(host, now) - BURST;
    return over > 0 ? Math.ceil((over * 1000) / CHECKS_PER_SECOND) : 0;
  }

  /** Checks `host` owes now (paid back at CHECKS_PER_SECOND); a host that owes nothing is forgotten. */
  private owing(host: string, now: number): number {
    const e = this.owed.get(host);
    if (e === undefined) return 0;
    const left = e.checks - ((now - e.at) * CHECKS_PER_SECOND) / 1000;
    if (left > 0) return left;
    this.owed.delete(host);
    return 0;
  }
}

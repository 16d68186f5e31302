/**
 * How fast a hub applies a leaf's interest changes (ClusterOptions.leafInterestRate):
 * a token bucket of changes (an entry added, replaced or removed, a snapshot's
 * removals included), `rate` a second, holding up to `burst`. Past it the
 * link's input is held until the bucket is back at zero, so the leaf waits
 * (nothing is dropped: its interest is applied late, never lost). Each change
 * costs the hub about 6 µs (a routing-table entry, the ledger, every peer's
 * outbox): one leaf replacing 50,000 entries per INTEREST frame held a hub's
 * event loop ~620 ms per frame, as often as it sent one (the twenty-fourth
 * session's review of leaves and gateways).
 */
export class InterestPacing {
  private tokens: number;
  private at: number;

  /** `rate` changes per second (> 0), `burst` changes at once (≥ rate); `now` in ms, monotonic. */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.at = now;
  }

  /** Charges `n` changes applied at `now` (ms); returns how long, ms, input must wait before more (0: none). */
  charge(n: number, now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.rate) / 1000);
    this.at = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.rate);
  }
}

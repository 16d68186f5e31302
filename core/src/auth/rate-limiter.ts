/**
 * A token bucket: `rate` events per second on average, bursts up to `burst`.
 * Used for the per-connection publish rate limit.
 */
export class RateLimiter {
  private tokens: number;
  private last = Date.now();
  private lastReport = 0;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token; false when the bucket is empty. */
  take(now = Date.now()): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Whether to tell the client about a refusal now: once a second at most, since more errors would amplify the flood. */
  shouldReport(now = Date.now()): boolean {
    if (now - this.lastReport < 1000) return false;
    this.lastReport = now;
    return true;
  }
}

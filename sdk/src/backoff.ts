/**
 * Reconnect delays: exponential backoff with full jitter (AWS architecture
 * blog, "Exponential Backoff And Jitter"): attempt n waits a uniformly random
 * time in [0, min(max, base * 2^n)). Full jitter spreads a crowd of clients
 * that lost the same node, so they do not come back in one storm.
 */
export interface BackoffOptions {
  /** First ceiling, ms. Default 250. */
  base?: number;
  /** Largest ceiling, ms. Default 20 000. */
  max?: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  readonly base: number;
  readonly max: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.base = options.base ?? 250;
    this.max = options.max ?? 20_000;
    this.random = options.random ?? Math.random;
  }

  /** Upper bound of the delay before attempt `n` (0-based). */
  ceiling(n: number): number {
    // 2^n overflows to Infinity for large n; min() keeps it finite.
    return Math.min(this.max, this.base * Math.pow(2, Math.min(n, 60)));
  }

  /** Delay before attempt `n` (0-based), ms. */
  delay(n: number): number {
    return Math.floor(this.random() * this.ceiling(n));
  }
}

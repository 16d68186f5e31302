/**
 * Counts per host that are forgotten at zero: what the per-host bounds are
 * checked against (client connections, client subscriptions, HTTP
 * connections). A host is a key as the auth throttle makes it (addressKey:
 * an IPv4 address, or an IPv6 /64). Memory: one entry per host with a
 * non-zero count.
 */
export class HostCounts {
  private readonly counts = new Map<string, number>();

  /** The count of `host` (0 when it has none). */
  get(host: string): number {
    return this.counts.get(host) ?? 0;
  }

  /** Adds `d` (+1 or -1; a weight, for subscriptions) to the count of `host`; returns the new count. */
  add(host: string, d: number): number {
    const n = this.get(host) + d;
    if (n > 0) this.counts.set(host, n);
    else this.counts.delete(host);
    return n;
  }
}

/**
 * Bounds the peer connections that have not authenticated yet: at most
 * `maxTotal` at once, and at most `maxPerIp` from one remote address. A
 * connection holds a slot from the moment TCP accepts it (before TLS, when
 * TLS is on) until its link is up or it closes, so a flood of connections
 * that never finish the handshake costs a bounded number of sockets and
 * buffers, for at most the handshake timeout each.
 */
export class PreAuthGate {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  /** Slots held, by connection key (remote address and port). */
  private readonly held = new Map<string, string>();
  /** Connections refused since start. */
  refused = 0;

  constructor(
    readonly maxTotal: number,
    readonly maxPerIp: number,
  ) {}

  /** Connections holding a slot right now. */
  get pending(): number {
    return this.total;
  }

  /**
   * Takes a slot for the connection `key` from `ip`; false (and nothing
   * taken) when a bound is reached. Taking the same key twice is a no-op.
   */
  admit(key: string, ip: string): boolean {
    if (this.held.has(key)) return true;
    const fromIp = this.perIp.get(ip) ?? 0;
    if (this.total >= this.maxTotal || fromIp >= this.maxPerIp) {
      this.refused++;
      return false;
    }
    this.total++;
    this.perIp.set(ip, fromIp + 1);
    this.held.set(key, ip);
    return true;
  }

  /** Frees the slot of `key` (its link is up, or it closed); idempotent. */
  release(key: string): void {
    const ip = this.held.get(key);
    if (ip === undefined) return;
    this.held.delete(key);
    this.total--;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
  }
}

/** The key of a socket in the gate: its remote address and port (the same on a TLS socket and the TCP socket under it). */
export function connectionKey(s: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${s.remoteAddress ?? '?'}|${s.remotePort ?? 0}`;
}

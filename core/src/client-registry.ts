import type { ClientSession } from './client-session.js';
import { addressKey, remoteAddress } from './auth/auth-throttle.js';

/**
 * The node's client connections and how many come from each IP address:
 * what `maxConnections` and `maxConnectionsPerIp` are checked against. Only
 * bookkeeping: the node decides what to do past a bound.
 */
export class ClientRegistry {
  private readonly all = new Set<ClientSession>();
  private readonly perIp = new Map<string, number>();

  get size(): number {
    return this.all.size;
  }

  values(): IterableIterator<ClientSession> {
    return this.all.values();
  }

  [Symbol.iterator](): IterableIterator<ClientSession> {
    return this.all.values();
  }

  /**
   * Adds `session`; returns how many connections its host has now, this one included. A host is
   * its address as the auth throttle keys it (addressKey): an IPv4-mapped IPv6 address counts as
   * its IPv4 (a dual-stack client port and an IPv4 WebSocket port see one host alike), IPv6 by /64
   * (a host has a whole subnet to rotate through: keyed per address, the bound held for nobody).
   */
  add(session: ClientSession): { ip: string; count: number } {
    this.all.add(session);
    const ip = addressKey(remoteAddress(session.remote));
    const count = (this.perIp.get(ip) ?? 0) + 1;
    this.perIp.set(ip, count);
    return { ip, count };
  }

  /**
   * Tells every client to go elsewhere (GOODBYE MB_ERR_DRAINING with `peers`),
   * waits until they closed or `timeoutMs` passed, then cuts the rest.
   */
  async drain(peers: string[], timeoutMs: number): Promise<void> {
    for (const s of this.all) s.goodbye('MB_ERR_DRAINING', 'node shutting down', peers);
    const deadline = Date.now() + timeoutMs;
    while (this.all.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    this.destroyAll();
  }

  /** Cuts every connection at once. */
  destroyAll(): void {
    for (const s of this.all) s.transport.destroy();
  }

  /** Removes `session`; false when it was not here (closed twice). */
  delete(session: ClientSession): boolean {
    if (!this.all.delete(session)) return false;
    const ip = addressKey(remoteAddress(session.remote));
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n > 0) this.perIp.set(ip, n);
    else this.perIp.delete(ip);
    return true;
  }
}

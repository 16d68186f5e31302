import type { ClientSession } from './client-session.js';
import { addressKey, remoteAddress } from './auth/auth-throttle.js';
import { HostCounts } from './host-counts.js';

/** How often a draining node tells its next slice of clients to go (drain). */
const DRAIN_STEP_MS = 10;

/**
 * The node's client connections and how many come from each IP address:
 * what `maxConnections` and `maxConnectionsPerIp` are checked against. Only
 * bookkeeping: the node decides what to do past a bound.
 */
export class ClientRegistry {
  private readonly all = new Set<ClientSession>();
  private readonly perIp = new HostCounts();

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
    const count = this.perIp.add(ip, 1);
    return { ip, count };
  }

  /**
   * Tells every client to go elsewhere (GOODBYE MB_ERR_DRAINING with `peers`),
   * waits until they closed or `timeoutMs` passed, then cuts the rest.
   *
   * The GOODBYEs are spread over the first half of `timeoutMs`, in equal
   * slices every DRAIN_STEP_MS (a few clients: at once, one slice each 10 ms),
   * so a node with tens of thousands of clients does not send all of them to
   * its peers in the same instant (a reconnect storm at every rolling restart;
   * NATS's lame-duck mode likewise closes its clients over a period). Clients
   * told later keep routing meanwhile; the second half is for the last ones to
   * flush and close. A client told keeps being read until it closes its side
   * (or the deadline): what it published before it read its GOODBYE is routed,
   * while this node's peer links still carry events (they close after the
   * drain: node.shutdown, then the cluster's stop). A client owed answers to
   * acked publishes (`answersOwed`: the store has not answered yet) gets its
   * GOODBYE once they are sent, acked publishes refused meanwhile
   * (Connection.goodbye's `answered`).
   */
  async drain(peers: (kind: 'tcp' | 'ws') => string[], timeoutMs: number, answersOwed?: (s: ClientSession) => Promise<void> | undefined): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // New connections are refused while draining: the clients to tell are those here now.
    const toTell = [...this.all];
    const perStep = Math.ceil(toTell.length / Math.max(1, Math.floor(timeoutMs / 2 / DRAIN_STEP_MS)));
    let next = 0;
    for (;;) {
      for (const end = Math.min(toTell.length, next + perStep); next < end; next++) {
        const s = toTell[next]!;
        // Until the deadline it keeps reading what the client sent before it read the GOODBYE (SPEC 10.7).
        if (this.all.has(s)) s.goodbye('MB_ERR_DRAINING', 'node shutting down', peers(s.transport.kind), Math.max(1, deadline - Date.now()), answersOwed?.(s));
      }
      if (this.all.size === 0 || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, DRAIN_STEP_MS));
    }
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
    this.perIp.add(ip, -1);
    return true;
  }
}

/**
 * Which node each address this node dialed led to (seeds, proxies, DNS
 * names, gossiped addresses): when that node's link dies, each of them is
 * dialed again (a seed may be a proxy or a name that is not the address the
 * node advertises).
 *
 * Bounded by what the mesh still wants: an address is forgotten once the
 * redialer gave it up, or once the node it led to is no longer known (gossip
 * forgot it: its address given up, or another node answered there) unless
 * it is a seed, which is dialed for ever anyway; and past `max` entries the
 * oldest that is not a seed goes. Before, an entry was kept per address that
 * ever linked: a full mesh whose nodes come and go at new addresses (pods)
 * grew it by one per node that ever joined, for ever.
 */
export class DialedPeers {
  private readonly byAddress = new Map<string, string>();

  constructor(
    private readonly isSeed: (address: string) => boolean,
    /** Entries at most (seeds included). */
    private readonly max: number,
  ) {}

  /** Addresses remembered now. */
  get size(): number {
    return this.byAddress.size;
  }

  /** A link dialed at `address` authenticated as `peerId`. */
  linked(address: string, peerId: string): void {
    this.byAddress.delete(address); // newest last: the oldest go first past `max`
    this.byAddress.set(address, peerId);
    if (this.byAddress.size <= this.max) return;
    for (const a of this.byAddress.keys()) {
      if (a === address || this.isSeed(a)) continue;
      this.byAddress.delete(a);
      return;
    }
  }

  /** The addresses `peerId` was reached at. */
  addressesOf(peerId: string): string[] {
    const out: string[] = [];
    for (const [a, id] of this.byAddress) if (id === peerId) out.push(a);
    return out;
  }

  /** The redialer gave `address` up: it is not wanted any more, nor any address of a node `known` no longer holds. */
  givenUp(address: string, known: ReadonlyMap<string, unknown>): void {
    if (!this.isSeed(address)) this.byAddress.delete(address);
    this.prune(known);
  }

  /** Forgets the addresses (not seeds) whose node `known` no longer holds. */
  prune(known: ReadonlyMap<string, unknown>): void {
    for (const [a, id] of this.byAddress) if (!known.has(id) && !this.isSeed(a)) this.byAddress.delete(a);
  }
}

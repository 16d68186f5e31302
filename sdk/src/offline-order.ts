/**
 * The order in which things were made while disconnected. Plain publishes
 * wait in the outbox, requests and acked publishes beside it (they hold
 * promises); each is stamped when made, so the next connection sends them
 * in that order, as a connected client would have (they used to go out as
 * outbox, then requests, then acked publishes: A, C, B for A, acked B, C).
 */
export class OfflineOrder {
  private last = 0;
  private readonly seqs = new WeakMap<object, number>();

  /** Records `item` as made now. */
  stamp(item: object): void {
    this.seqs.set(item, ++this.last);
  }

  /** When `item` was made: 0 (before all) for one never stamped, e.g. an entry a persistent outbox kept from an earlier run. */
  seq(item: object): number {
    return this.seqs.get(item) ?? 0;
  }
}

/**
 * Something made for the node waits for a connection: a publish in the
 * outbox, or an acked one (made offline, or not taken by a draining node).
 * A drain whose connection is lost goes on with the next one while it does.
 */
export function owes(e: { readonly outbox: { readonly count: number } | undefined; readonly durable: { firstSeq(): number } | undefined }): boolean {
  return !!e.outbox?.count || (e.durable?.firstSeq() ?? Infinity) < Infinity;
}

import type { OutboundBudget } from './outbound-budget.js';

/**
 * Bytes a node keeps for one connection outside its outbound queue: live
 * events a resuming subscription buffers while its replay reads history
 * (durable/recovery.ts). Counted against the connection's bound and the
 * node's outbound budget (SPEC 10.6), from the reservation until the holder
 * gives them back (sent, or dropped) or the connection is gone (drop()).
 * Before, only the connection's bound counted them: many clients recovering
 * at once held their replays' bytes beyond the budget the node reported.
 *
 * A reservation past the budget is refused, never made room for by
 * shedding other queues: its holder drops what it buffered and reads it
 * from history again, where a shed would cost other consumers their events
 * or their connection. For the same reason reservations together take at
 * most half the budget: bytes that can be read again never leave the live
 * queues so little room that they shed one another.
 */
export class OutboundReserve {
  /** Bytes reserved now. */
  bytes = 0;

  constructor(private budget: OutboundBudget | undefined) {}

  /** Reserves `size` bytes when they fit `maxPending` beside the `queued` bytes of the connection's queue, and the node's budget. */
  take(size: number, queued: number, maxPending: number): boolean {
    if (queued + this.bytes + size > maxPending) return false;
    const b = this.budget;
    if (b !== undefined) {
      if (b.used + size > b.limit || b.reserved + size > b.limit / 2) return false;
      b.used += size;
      b.reserved += size;
    }
    this.bytes += size;
    return true;
  }

  /** Gives back `size` bytes taken (no more than are reserved: a holder may give back after drop()). */
  give(size: number): void {
    const n = Math.min(size, this.bytes);
    this.bytes -= n;
    if (this.budget !== undefined) {
      this.budget.used -= n;
      this.budget.reserved -= n;
    }
  }

  /** The connection is gone, or out of the budget: its reservations leave the budget now, whatever its holders still give back. */
  drop(): void {
    this.give(this.bytes);
    this.budget = undefined;
  }
}

/**
 * What one member of the node-wide outbound budget is (an OutboundQueue):
 * the bytes it counts, whether it holds a backlog (a slow consumer, behind
 * its wire), and how it gives bytes back (`shed`: its policy applied).
 */
export interface BudgetMember {
  readonly charged: number;
  /** Not closing: shedding it can give bytes back. */
  readonly sheddable: boolean;
  shed(): void;
}

/**
 * The node-wide bound on what outbound queues hold, client sessions and peer
 * links together (SPEC 10.6; the output twin of the input budget, SPEC 9.5).
 * Each queue counts its backlog and what its wire holds in `used` (a
 * backlog's shared bytes once per queue: an over-count, never an
 * under-count). A queue that needs room past `limit` has the queues holding
 * the most, behind their wires, shed first (their policy: 'drop' drops its
 * queued events, 'disconnect' closes); when it holds the most itself, it is
 * the slow consumer. One scan of the members per shed; a shed empties a
 * whole backlog, so under pressure scans are few.
 */
export class OutboundBudget {
  used = 0;
  /** Of `used`, bytes reserved outside the queues (outbound-reserve.ts): at most half the limit. */
  reserved = 0;
  /** Times a queue was made to shed for the budget (metrics). */
  sheds = 0;
  private readonly members = new Set<BudgetMember>();

  constructor(public limit: number) {}

  join(m: BudgetMember): void {
    this.members.add(m);
  }

  leave(m: BudgetMember): void {
    this.members.delete(m);
  }

  /**
   * Room for `size` more bytes of `q`: sheds the largest open members
   * holding more than `q` until it fits. False when it still does not (then
   * `q` holds the most: it gives the room itself).
   */
  makeRoom(q: BudgetMember, size: number): boolean {
    while (this.used + size > this.limit) {
      let victim: BudgetMember | undefined;
      let most = q.charged;
      for (const m of this.members) {
        if (m !== q && m.sheddable && m.charged > most) {
          victim = m;
          most = m.charged;
        }
      }
      if (victim === undefined) return false;
      this.sheds++;
      victim.shed();
    }
    return true;
  }
}

/** The budgets of running nodes, by the node's input budget (one object per node, what its sessions and links share). */
const budgets = new WeakMap<object, OutboundBudget>();

/** The outbound budget of the node `key` stands for (its input budget); `limit` sets it when given. */
export function outboundBudgetOf(key: object, limit?: number): OutboundBudget {
  let b = budgets.get(key);
  if (b === undefined) budgets.set(key, (b = new OutboundBudget(limit ?? DEFAULT_OUTBOUND_BUDGET)));
  else if (limit !== undefined) b.limit = limit;
  return b;
}

export const DEFAULT_OUTBOUND_BUDGET = 256 * 1024 * 1024;

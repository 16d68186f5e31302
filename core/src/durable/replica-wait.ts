import { waitForReplicas, type RedisClient } from './redis-connect.js';
import { withinDeadline } from './store-deadline.js';

interface Waiter {
  resolve(replicas: number): void;
  reject(e: unknown): void;
}

interface Group {
  /** A WAIT is on its way for this group. */
  running: boolean;
  /** Callers that arrived while it was: the next WAIT answers them all. */
  next: Waiter[];
}

/**
 * Redis `WAIT` for many writers at once (a group commit). WAIT confirms every
 * write made before it on its connection, so callers that ask while a WAIT is
 * on its way share the next one: one WAIT per round trip and shard instead of
 * one per write, which would hold the connection for each in turn.
 *
 * `group` names the shard: a key of the slot the writes went to (every write
 * of a cluster's shard on one connection); one server or a Sentinel primary
 * needs a single group.
 */
export class ReplicaWait {
  private readonly groups = new Map<string, Group>();

  constructor(
    private readonly client: RedisClient,
    private readonly replicas: number,
    /** WAIT's own timeout, ms (Redis answers by then). */
    private readonly timeoutMs: number,
    /**
     * How long a WAIT may go unanswered, ms (durable.writeTimeoutMs, above
     * timeoutMs): a silent Redis held the group's WAIT, and every write of the
     * group waiting behind it, for ever.
     */
    private readonly deadlineMs: number,
  ) {}

  /** Resolves with the number of replicas that have every write this client made on `group`'s shard before the call. */
  confirm(group: string, slotKey: string): Promise<number> {
    let g = this.groups.get(group);
    if (!g) {
      g = { running: false, next: [] };
      this.groups.set(group, g);
    }
    const p = new Promise<number>((resolve, reject) => g.next.push({ resolve, reject }));
    if (!g.running) this.run(group, g, slotKey);
    return p;
  }

  /**
   * undefined once `replicas` replicas have every write made before the
   * call on `group`'s shard; else what was not confirmed, for the NACK
   * ("<what> stored on the primary, confirmed by <n> of <replicas> replicas
   * within <ms> ms").
   */
  async unconfirmed(group: string, slotKey: string, what: string): Promise<string | undefined> {
    const got = await this.confirm(group, slotKey);
    return got < this.replicas ? `${what} stored on the primary, confirmed by ${got} of ${this.replicas} replicas within ${this.timeoutMs} ms` : undefined;
  }

  private run(group: string, g: Group, slotKey: string): void {
    const batch = g.next;
    g.next = [];
    g.running = true;
    withinDeadline(waitForReplicas(this.client, slotKey, this.replicas, this.timeoutMs), this.deadlineMs, 'WAIT').then(
      (n) => this.settle(group, g, slotKey, batch, (w) => w.resolve(n)),
      (e: unknown) => this.settle(group, g, slotKey, batch, (w) => w.reject(e)),
    );
  }

  private settle(group: string, g: Group, slotKey: string, batch: Waiter[], fn: (w: Waiter) => void): void {
    for (const w of batch) fn(w);
    g.running = false;
    if (g.next.length > 0) this.run(group, g, slotKey);
    else this.groups.delete(group);
  }
}

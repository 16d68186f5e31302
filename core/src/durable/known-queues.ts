import { SessionError } from '@meshbus/proto';
import { queueName, type QueueRef } from './queue-names.js';

/**
 * The durable queues a node knows (the mesh's set as last read, plus those
 * its members registered), i.e. those it adds a job to for every matching
 * event.
 *
 * Bounds: at most `maxQueues` in all (one job per matching queue per
 * event), and at most `maxPerHost` made by the clients of one host (IPv4,
 * IPv6 /64) among them, counted mesh-wide (the store's record of each
 * queue's maker, QueueSet.owners, read every refresh; this node's own count
 * when higher): without that share one host's subscribe/unsubscribe loop
 * (1,024 names in 14 s in a review) used up the mesh's room for new queues
 * until they were forgotten, and counted per node, one host spread over N
 * nodes had N shares.
 *
 * Forgetting: a queue absent from the set (swept by the retention rule,
 * queue-retention.ts, or removed by an operator) is forgotten once it has
 * been absent for `graceMs` and has no member here: a store that lost its
 * data is repaired by the nodes whose members consume there within one
 * refresh, and the nodes that still know the queue meanwhile go on
 * enqueuing for it instead of dropping its events.
 */
export class KnownQueues {
  private readonly known = new Map<string, QueueRef>();
  /** Since when each known queue has been missing from the set, ms. */
  private readonly absentSince = new Map<string, number>();
  /** The host whose client made each queue this node created, and how many each host has. */
  private readonly createdBy = new Map<string, string>();
  private readonly perHost = new Map<string, number>();
  /** How many of the mesh's queues each host made (the store's record as of the last refresh), or none when unread. */
  private meshPerHost: ReadonlyMap<string, number> | undefined;

  constructor(
    private readonly limits: { maxQueues: number; maxPerHost: number },
    private readonly matcher: { addQueue(pattern: string, q: QueueRef): void; removeQueue(pattern: string, q: QueueRef): void },
    /** A queue forgotten: what the node holds for it (its job library object, its job count) can go. */
    private readonly onForget: (ref: QueueRef) => void = () => {},
  ) {}

  get size(): number {
    return this.known.size;
  }

  has(name: string): boolean {
    return this.known.has(name);
  }

  /** Whether a queue known has group `group` (on any pattern): what shares its dead-letter queue. */
  hasGroup(group: string): boolean {
    for (const ref of this.known.values()) if (ref.group === group) return true;
    return false;
  }

  /**
   * Throws SessionError MB_ERR_TOO_MANY_SUBSCRIPTIONS when (pattern, group)
   * is a queue the node does not know and it already knows `maxQueues`, or
   * when `host` already made `maxPerHost` of those it knows.
   */
  admit(pattern: string, group: string, host: string | undefined): void {
    if (this.known.has(queueName(pattern, group))) return;
    const { maxQueues, maxPerHost } = this.limits;
    if (this.known.size >= maxQueues) {
      throw new SessionError('MB_ERR_TOO_MANY_SUBSCRIPTIONS', `${this.known.size} durable queues exist (limit ${maxQueues}); join an existing queue group`);
    }
    const mine = host === undefined ? 0 : Math.max(this.perHost.get(host) ?? 0, this.meshPerHost?.get(host) ?? 0);
    if (mine >= maxPerHost) {
      throw new SessionError('MB_ERR_TOO_MANY_SUBSCRIPTIONS', `${mine} durable queues were made from this host (limit ${maxPerHost}); join an existing queue group, or wait until unused ones are forgotten`);
    }
  }

  /** The store's record of who made the mesh's queues, by host (QueueSet.owners); undefined keeps the last. */
  owners(perHost: ReadonlyMap<string, number> | undefined): void {
    if (perHost !== undefined) this.meshPerHost = perHost;
  }

  /** The queue (pattern, group), known from now on; `host`: the host of the client that made it here. */
  learn(pattern: string, group: string, host?: string): QueueRef {
    const name = queueName(pattern, group);
    let ref = this.known.get(name);
    if (!ref) {
      ref = { pattern, group, name };
      this.known.set(name, ref);
      this.matcher.addQueue(pattern, ref);
      if (host !== undefined) {
        this.createdBy.set(name, host);
        this.perHost.set(host, (this.perHost.get(host) ?? 0) + 1);
      }
    }
    this.absentSince.delete(name);
    return ref;
  }

  /**
   * The set as read: learns its valid members (within maxQueues), and
   * forgets the queues missing from it for `graceMs` that `inUse` does not
   * hold (a local member, or one registering).
   */
  listed(members: ReadonlyArray<readonly [pattern: string, group: string]>, inUse: (name: string) => boolean, graceMs: number): void {
    const now = performance.now(); // a local duration: a step of the wall clock neither forgets early nor keeps for ever
    const present = new Set<string>();
    for (const [pattern, group] of members) {
      const name = queueName(pattern, group);
      present.add(name);
      if (this.known.has(name) || this.known.size < this.limits.maxQueues) this.learn(pattern, group);
    }
    for (const [name, ref] of this.known) {
      if (present.has(name) || inUse(name)) {
        this.absentSince.delete(name);
        continue;
      }
      const since = this.absentSince.get(name);
      if (since === undefined) this.absentSince.set(name, now);
      else if (now - since >= graceMs) this.forget(ref);
    }
  }

  private forget(ref: QueueRef): void {
    this.known.delete(ref.name);
    this.absentSince.delete(ref.name);
    this.matcher.removeQueue(ref.pattern, ref);
    this.onForget(ref);
    const host = this.createdBy.get(ref.name);
    if (host === undefined) return;
    this.createdBy.delete(ref.name);
    const n = (this.perHost.get(host) ?? 1) - 1;
    if (n > 0) this.perHost.set(host, n);
    else this.perHost.delete(host);
  }
}

import { PatternLimits } from './pattern-limits.js';
import type { Receivers } from './receivers.js';
import type { Subscriber, Subscription } from './subscriber.js';

const NONE: readonly never[] = [];

/** Whether deliveries for `sub` may be dropped: a client's subscription that chose 'drop'. */
export function sheds(sub: Subscription): boolean {
  return sub.slow === 'drop' && sub.owner.kind === 'client';
}

/**
 * One owner's subscriptions to one pattern: what the routing table's tries
 * hold, so a route visits each (owner, pattern) once however many
 * subscriptions (sids) the owner holds on it. Before, every duplicate was a
 * trie entry of its own: one connection holding 10,000 `>` made each route
 * of a topic not in the cache visit 10,000 entries (~215 µs per first
 * publish of a topic, against ~28 µs). What a route needs of them is kept
 * as they come and go: how many plain ones and how many of those are firm,
 * the sids of the 'drop' ones, those with a `max`, the durable ones, and the
 * members per queue group. The arrays a route hands out are never changed
 * afterwards (replaced on a change), so a `Receivers` in the cache or in
 * flight keeps what it was computed with.
 */
export class OwnedPattern {
  /** Plain subscriptions (no queue, no durable position). */
  private readonly plainSubs = new FewSubscriptions();
  /** Of those, how many are firm (not a client's 'drop'). */
  private firm = 0;
  /** Of those, the ones with a `max`; made on the first. */
  private limits: PatternLimits | undefined;
  /** Durable (sequenced) ones; made on the first (40 B per entry held by every plain subscription before). */
  private sequencedSubs: FewSubscriptions | undefined;
  /** Queue members by group name (arrays replaced, never changed in place). */
  private groups: Map<string, readonly Subscription[]> | undefined;
  private dropCache: readonly number[] | undefined;
  private sequencedCache: readonly Subscription[] | undefined;
  /** Subscriptions held. */
  size = 0;
  /**
   * The receivers of the topics only this entry matches, when it holds plain
   * subscriptions alone and none has a `max` (RoutingTable.route): one object
   * for all of them, so a run of events goes on across their topics. Dropped
   * at every change of the entry.
   */
  sole: Receivers | undefined;

  constructor(
    readonly owner: Subscriber,
    readonly pattern: string,
  ) {}

  /** Adds `sub` (this owner's, on this pattern); false when it was already here. */
  add(sub: Subscription): boolean {
    this.sole = undefined;
    if (sub.sequencer !== undefined) {
      const seq = (this.sequencedSubs ??= new FewSubscriptions());
      if (seq.has(sub)) return false;
      seq.add(sub);
      this.sequencedCache = undefined;
    } else if (sub.queue !== undefined) {
      const groups = (this.groups ??= new Map());
      const members = groups.get(sub.queue) ?? NONE;
      if (members.includes(sub)) return false;
      groups.set(sub.queue, [...members, sub]);
    } else {
      if (this.plainSubs.has(sub)) return false;
      this.plainSubs.add(sub);
      if (!sheds(sub)) this.firm++;
      this.dropCache = undefined;
      if (sub.max !== undefined) this.limit(sub);
    }
    this.size++;
    return true;
  }

  /** Removes `sub`; false when it was not here. */
  remove(sub: Subscription): boolean {
    this.sole = undefined;
    if (sub.sequencer !== undefined) {
      if (this.sequencedSubs?.delete(sub) !== true) return false;
      this.sequencedCache = undefined;
    } else if (sub.queue !== undefined) {
      const members = this.groups?.get(sub.queue);
      if (members === undefined || !members.includes(sub)) return false;
      if (members.length === 1) this.groups!.delete(sub.queue);
      else this.groups!.set(sub.queue, members.filter((m) => m !== sub));
    } else {
      if (!this.plainSubs.delete(sub)) return false;
      if (!sheds(sub)) this.firm--;
      this.dropCache = undefined;
      this.limits?.delete(sub);
    }
    this.size--;
    return true;
  }

  /** `sub`, held here, got a `max` (again): plain deliveries to it are counted (Receivers.limited). */
  limit(sub: Subscription): void {
    this.sole = undefined;
    if (this.plainSubs.has(sub)) (this.limits ??= new PatternLimits()).set(sub);
  }

  /** Whether a plain subscription here has a `max`: each delivery through the pattern is then `counted`. */
  get limited(): boolean {
    return this.limits !== undefined && this.limits.size > 0;
  }

  /** One plain delivery through the pattern: the subscriptions it brings to their max end (Subscriber.countDelivery). */
  counted(): void {
    this.limits?.counted((sub) => this.owner.countDelivery?.(sub));
  }

  /** Whether a plain subscription is held: the owner is a plain receiver of the topics the pattern matches. */
  get plain(): boolean {
    return this.plainSubs.size > 0;
  }

  /** The sids of the plain subscriptions when every one is a client's 'drop' one (the DropTag of a plain delivery), else undefined. */
  get dropTag(): readonly number[] | undefined {
    if (this.firm > 0 || this.plainSubs.size === 0) return undefined;
    return (this.dropCache ??= [...this.plainSubs].map((s) => s.sid));
  }

  get sequenced(): readonly Subscription[] {
    if (this.sequencedSubs === undefined || this.sequencedSubs.size === 0) return NONE;
    return (this.sequencedCache ??= [...this.sequencedSubs]);
  }

  /** Queue members by group name, or undefined when none is held. */
  get queues(): ReadonlyMap<string, readonly Subscription[]> | undefined {
    return this.groups !== undefined && this.groups.size > 0 ? this.groups : undefined;
  }

  forEach(visit: (sub: Subscription) => void): void {
    for (const s of this.plainSubs) visit(s);
    if (this.sequencedSubs !== undefined) for (const s of this.sequencedSubs) visit(s);
    if (this.groups) for (const members of this.groups.values()) for (const s of members) visit(s);
  }
}

/**
 * A set of subscriptions that makes no Set for one: most (owner, pattern)
 * entries hold a single subscription, and two empty Sets per entry made a
 * subscription cost ~1.4 KB of node memory where it had cost ~0.9 (bench
 * `subs-100k`, memPerSub).
 */
class FewSubscriptions {
  private one: Subscription | undefined;
  private more: Set<Subscription> | undefined;

  get size(): number {
    return this.more !== undefined ? this.more.size : this.one !== undefined ? 1 : 0;
  }

  has(sub: Subscription): boolean {
    return this.more !== undefined ? this.more.has(sub) : this.one === sub;
  }

  add(sub: Subscription): void {
    if (this.more !== undefined) this.more.add(sub);
    else if (this.one === undefined) this.one = sub;
    else if (this.one !== sub) {
      this.more = new Set([this.one, sub]);
      this.one = undefined;
    }
  }

  /** Removes `sub`; false when it was not here. */
  delete(sub: Subscription): boolean {
    if (this.more !== undefined) return this.more.delete(sub);
    if (this.one !== sub) return false;
    this.one = undefined;
    return true;
  }

  *[Symbol.iterator](): IterableIterator<Subscription> {
    if (this.more !== undefined) yield* this.more;
    else if (this.one !== undefined) yield this.one;
  }
}

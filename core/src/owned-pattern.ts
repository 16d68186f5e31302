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
  /** Plain subscriptions (no queue, no durable position): the first as itself, a Set from the second on (Few, below: only its functions change them). */
  one: Subscription | undefined;
  more: Set<Subscription> | undefined;
  /**
   * Limits, 'drop' subscriptions, durable subscriptions and queue groups: made at the first (six fields
   * fewer per entry, issue #17's memory per subscription: most entries hold one firm plain subscription).
   */
  private rare: RareParts | undefined;
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
      const r = (this.rare ??= {});
      const seq = (r.sequenced ??= { one: undefined, more: undefined });
      if (!addFew(seq, sub)) return false;
      r.sequencedCache = undefined;
    } else if (sub.queue !== undefined) {
      const groups = ((this.rare ??= {}).groups ??= new Map());
      const members = groups.get(sub.queue) ?? NONE;
      if (members.includes(sub)) return false;
      groups.set(sub.queue, [...members, sub]);
    } else {
      if (!addFew(this, sub)) return false;
      if (sheds(sub)) {
        const r = (this.rare ??= {});
        r.shed = (r.shed ?? 0) + 1;
      }
      if (this.rare !== undefined) this.rare.dropCache = undefined;
      if (sub.max !== undefined) this.limit(sub);
    }
    return true;
  }

  /** Removes `sub`; false when it was not here. */
  remove(sub: Subscription): boolean {
    this.sole = undefined;
    const r = this.rare;
    if (sub.sequencer !== undefined) {
      if (r?.sequenced === undefined || !deleteFew(r.sequenced, sub)) return false;
      r.sequencedCache = undefined;
    } else if (sub.queue !== undefined) {
      const members = r?.groups?.get(sub.queue);
      if (members === undefined || !members.includes(sub)) return false;
      if (members.length === 1) r!.groups!.delete(sub.queue);
      else r!.groups!.set(sub.queue, members.filter((m) => m !== sub));
    } else {
      if (!deleteFew(this, sub)) return false;
      if (r !== undefined) {
        if (sheds(sub)) r.shed!--;
        r.dropCache = undefined;
        r.limits?.delete(sub);
      }
    }
    return true;
  }

  /** Whether no subscription is held (the entry leaves the table). */
  get empty(): boolean {
    if (this.plain) return false;
    const r = this.rare;
    return r === undefined || ((r.sequenced === undefined || sizeOfFew(r.sequenced) === 0) && (r.groups === undefined || r.groups.size === 0));
  }

  /** `sub`, held here, got a `max` (again): plain deliveries to it are counted (Receivers.limited). */
  limit(sub: Subscription): void {
    this.sole = undefined;
    if (hasFew(this, sub)) ((this.rare ??= {}).limits ??= new PatternLimits()).set(sub);
  }

  /** Whether a plain subscription here has a `max`: each delivery through the pattern is then `counted`. */
  get limited(): boolean {
    const l = this.rare?.limits;
    return l !== undefined && l.size > 0;
  }

  /** One plain delivery through the pattern: the subscriptions it brings to their max end (Subscriber.countDelivery). */
  counted(): void {
    this.rare?.limits?.counted((sub) => this.owner.countDelivery?.(sub));
  }

  /** Whether a plain subscription is held: the owner is a plain receiver of the topics the pattern matches. */
  get plain(): boolean {
    return this.one !== undefined || (this.more !== undefined && this.more.size > 0);
  }

  /** The sids of the plain subscriptions when every one is a client's 'drop' one (the DropTag of a plain delivery), else undefined. */
  get dropTag(): readonly number[] | undefined {
    const r = this.rare;
    const shed = r?.shed ?? 0;
    if (shed === 0 || shed < sizeOfFew(this)) return undefined;
    return (r!.dropCache ??= [...fewValues(this)].map((s) => s.sid));
  }

  get sequenced(): readonly Subscription[] {
    const r = this.rare;
    if (r?.sequenced === undefined || sizeOfFew(r.sequenced) === 0) return NONE;
    return (r.sequencedCache ??= [...fewValues(r.sequenced)]);
  }

  /** Queue members by group name, or undefined when none is held. */
  get queues(): ReadonlyMap<string, readonly Subscription[]> | undefined {
    const g = this.rare?.groups;
    return g !== undefined && g.size > 0 ? g : undefined;
  }

  forEach(visit: (sub: Subscription) => void): void {
    for (const s of fewValues(this)) visit(s);
    const r = this.rare;
    if (r?.sequenced !== undefined) for (const s of fewValues(r.sequenced)) visit(s);
    if (r?.groups) for (const members of r.groups.values()) for (const s of members) visit(s);
  }
}

/** The parts of an entry most never need. */
interface RareParts {
  /** Plain subscriptions with a `max`. */
  limits?: PatternLimits;
  /** Plain subscriptions that are a client's 'drop' ones, and, when all are, their sids (the DropTag). */
  shed?: number;
  dropCache?: readonly number[];
  /** Durable (sequenced) subscriptions, and them as the array routes hand out. */
  sequenced?: Few;
  sequencedCache?: readonly Subscription[];
  /** Queue members by group name (arrays replaced, never changed in place). */
  groups?: Map<string, readonly Subscription[]>;
}

/**
 * A set of subscriptions that makes no Set for one: most (owner, pattern)
 * entries hold a single subscription, and two empty Sets per entry made a
 * subscription cost ~1.4 KB of node memory where it had cost ~0.9 (bench
 * `subs-100k`, memPerSub). Fields of the entry itself for its plain
 * subscriptions (an object of their own was 40 B more per entry).
 */
interface Few {
  one: Subscription | undefined;
  more: Set<Subscription> | undefined;
}

function sizeOfFew(f: Few): number {
  return f.more !== undefined ? f.more.size : f.one !== undefined ? 1 : 0;
}

function hasFew(f: Few, sub: Subscription): boolean {
  return f.more !== undefined ? f.more.has(sub) : f.one === sub;
}

/** Adds `sub`; false when it was there. */
function addFew(f: Few, sub: Subscription): boolean {
  if (hasFew(f, sub)) return false;
  if (f.more !== undefined) f.more.add(sub);
  else if (f.one === undefined) f.one = sub;
  else {
    f.more = new Set([f.one, sub]);
    f.one = undefined;
  }
  return true;
}

/** Removes `sub`; false when it was not there. */
function deleteFew(f: Few, sub: Subscription): boolean {
  if (f.more !== undefined) return f.more.delete(sub);
  if (f.one !== sub) return false;
  f.one = undefined;
  return true;
}

function fewValues(f: Few): Iterable<Subscription> {
  return f.more !== undefined ? f.more : f.one !== undefined ? [f.one] : NONE;
}

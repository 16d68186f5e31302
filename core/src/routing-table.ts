import { TopicTrie, forEachEntry, type Frame } from '@meshbus/proto';
import { ReceiversCache } from './receivers-cache.js';
import { HostCounts } from './host-counts.js';
import { OwnedPattern, sheds } from './owned-pattern.js';
import { OwnerPatterns } from './owner-patterns.js';
import { receiversOf } from './receivers-of.js';
import { WideSubscriptions } from './wide-subscriptions.js';
import { weightOf } from './subscription-weight.js';
import { admitted, takesPayload, type DropTag, type Subscriber, type SubscriberKind, type Subscription } from './subscriber.js';
import type { GroupMembers, GroupReceivers, LimitedPattern, Receivers } from './receivers.js';

export type { GroupMembers, GroupReceivers, LimitedPattern, Receivers };

/**
 * Which receivers an event may reach, by where it came from (cluster/README.md):
 * 'all' when it enters the mesh here (a client's, a leaf's or the node's own
 * event), 'region' when it came over a gateway (never back out to another
 * region), 'local' when a peer of a full mesh forwarded it (one hop: this node's
 * clients, internal receivers and leaves only).
 */
export type DeliveryScope = 'all' | 'region' | 'local';

/** Whether `scope` leaves out a plain receiver of kind `kind`: gateways unless the event entered here, peers too for 'local'. */
export function outOfScope(kind: SubscriberKind, scope: DeliveryScope): boolean {
  return scope !== 'all' && (kind === 'gateway' || (scope === 'local' && kind === 'peer'));
}

const NONE: readonly never[] = [];
const NO_RECEIVERS: Receivers = { plain: NONE, plainDrop: NONE, groups: NONE, sequenced: NONE, limited: NONE, linksOnly: false };

/** The receivers of the topics only `held` (one owner's plain subscriptions to one pattern) matches. */
function soleReceivers(held: OwnedPattern): Receivers {
  return {
    plain: [held.owner],
    plainDrop: [held.dropTag],
    groups: NONE,
    sequenced: NONE,
    limited: held.limited ? [held] : NONE,
    linksOnly: held.owner.forwardRaised !== undefined,
  };
}

/**
 * Whether `tier` has members not owned by `skip` that admit `f` (one entry per owner: at most two
 * looked at); `spare`: only members not passed over (Subscriber.passedOver) that take its payload
 * (a peer whose maxPayload is smaller would skip it: the event lost where a passed-over leaf would
 * have taken it, the review of this rule).
 */
function hasMember(tier: readonly GroupMembers[], skip: Subscriber | undefined, f: Frame, spare: boolean): boolean {
  for (let i = 0; i < tier.length; i++) {
    const o = tier[i]!.owner;
    if (o !== skip && admitted(o, f) && !(spare && (o.passedOver === true || !takesPayload(o, f.payloadLen)))) return true;
  }
  return false;
}

/**
 * The tier pick takes members from: this node's, else the region's, else another region's, as far as
 * `scope` reaches; the nearest with a member not passed over, else the nearest with any member.
 * (Passed-over members only ordered a tier before: a leaf far behind, its hub's only member, got every
 * copy while a peer's member waited, and lost the hand-backs past its hub's ledger.)
 */
function tierOf(group: GroupReceivers, skip: Subscriber | undefined, f: Frame, scope: DeliveryScope): readonly GroupMembers[] {
  const { local, remote, far } = group;
  for (let spare = true; ; spare = false) {
    if (hasMember(local, skip, f, spare)) return local;
    if (scope !== 'local' && hasMember(remote, skip, f, spare)) return remote;
    if (scope === 'all' && hasMember(far, skip, f, spare)) return far;
    if (!spare) return scope === 'local' ? local : scope === 'region' ? remote : far;
  }
}

/**
 * The nearest of `ranks` (GroupReceivers.remoteRanks) with a member pick would take first: not `skip`'s,
 * admitting `f`, taking its payload and not backed up; else the nearest with one that takes the payload;
 * else `all` (the whole remote tier: pick then falls back as without ranks). Before, the nearest rank with
 * any member: a link that skips the payload (its peer's maxPayload) or a backed-up one got every copy.
 */
function nearestRank(ranks: readonly (readonly GroupMembers[])[], all: readonly GroupMembers[], skip: Subscriber | undefined, f: Frame): readonly GroupMembers[] {
  let fits: readonly GroupMembers[] | undefined;
  for (const rank of ranks) {
    for (const e of rank) {
      if (e.owner === skip || !admitted(e.owner, f) || !takesPayload(e.owner, f.payloadLen)) continue;
      if (!e.owner.backedUp && e.owner.passedOver !== true) return rank;
      fits ??= rank;
    }
  }
  return fits ?? all;
}

/** The DropTag of a delivery addressed to `sub` (a queue member): `[sid]` for a client's 'drop' subscription, made once. */
export function dropTagOf(sub: Subscription): DropTag | undefined {
  return sheds(sub) ? (sub.dropTag ??= [sub.sid]) : undefined;
}

/** The index of the entry of `tier` holding member number `k` (binary search on `before`). */
function entryAt(tier: readonly GroupMembers[], k: number): number {
  let lo = 0;
  let hi = tier.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (tier[mid]!.before <= k) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** A change of the set of (pattern, queue) pairs that local clients and internal receivers subscribe to. */
export interface InterestChange {
  op: '+' | '-';
  pattern: string;
  queue: string | undefined;
}

/** Topics under it are request inboxes (SPEC §9): one-shot reply topics, never cached. */
const INBOX_PREFIX = '_INBOX.';

/** Interest the table reports to the cluster: clients' and internal receivers' (a leaf's is announced by the cluster, per link). */
function isLocalInterest(kind: SubscriberKind): boolean {
  return kind === 'client' || kind === 'internal';
}

/**
 * The node's one routing table: every subscription, local or learned from a
 * peer, in a TopicTrie. Lookups are cached per topic and keyed by the topic
 * hash from the frame header, so a repeated topic costs one hash-map hit and
 * a byte compare instead of a string decode and a trie walk.
 */
export class RoutingTable {
  /** One entry per (owner, pattern): a route visits it once however many subscriptions (sids) it holds (owned-pattern.ts). */
  private readonly trie = new TopicTrie<OwnedPattern>();
  /** The same entries by owner and pattern. */
  private readonly held = new OwnerPatterns();
  /** Subscriptions in the table. */
  private subCount = 0;
  /** Clients' subscriptions starting with a wildcard: apart, so a reserved topic looks only at its owner's (wide-subscriptions.ts). */
  private readonly wide = new WideSubscriptions();
  /** Receivers per topic, dropped by the changes that match the topic (receivers-cache.ts). */
  private readonly cache = new ReceiversCache<Receivers>();
  /**
   * Counts of local (client and internal) subscriptions per pattern and queue:
   * the interest peers hear about. Kept only while someone listens (a cluster):
   * on a node of its own it was a Map entry per pattern nobody read (~40 B a
   * subscription, issue #17's memory per subscription); the first listener
   * has them counted once.
   */
  private interest: Map<string, number> | undefined;
  private readonly listeners: Array<(c: InterestChange) => void> = [];
  /** What the trie matched for the topic being routed (route is never re-entered: emptied after each use). */
  private readonly matched: OwnedPattern[] = [];
  /** Collects into `matched`; made once (a closure per route was an allocation per cache miss). */
  private readonly collect = (sub: OwnedPattern): void => {
    this.matched.push(sub);
  };
  /**
   * Subscriptions in the table by owner kind, kept as they come and go: the
   * open /metrics reads them at every scrape, and walking the trie there cost
   * ~27 ms of event loop per scrape at 100,000 subscriptions (~270 ms at the
   * default maxNodeSubscriptions), for anyone who asks.
   */
  private readonly owners: Record<SubscriberKind, number> = { client: 0, peer: 0, leaf: 0, gateway: 0, internal: 0 };

  /** Client subscriptions per host (Subscriber.host). */
  private readonly perHost = new HostCounts();
  /** Their weight per host (what maxSubscriptionsPerIp bounds). */
  private readonly perHostWeight = new HostCounts();

  /**
   * `weights`: kept up to date with the weight of the subscriptions in the table by owner kind
   * (subscription-weight.ts: what the subscription limits count), e.g. the node's stats.subscriptionWeight.
   */
  constructor(private readonly weights: Record<SubscriberKind, number> = { client: 0, peer: 0, leaf: 0, gateway: 0, internal: 0 }) {}

  /** How many subscriptions client connections from `host` (Subscriber.host) have in the table. */
  hostSubscriptions(host: string): number {
    return this.perHost.get(host);
  }

  /** The weight of those (what maxSubscriptionsPerIp bounds). */
  hostWeight(host: string): number {
    return this.perHostWeight.get(host);
  }

  get size(): number {
    return this.subCount;
  }

  /** Subscriptions owned by client connections. */
  get clientSubscriptions(): number {
    return this.owners.client;
  }

  /** Their weight (what maxNodeSubscriptions bounds; subscription-weight.ts). */
  get clientWeight(): number {
    return this.weights.client;
  }

  /** How many subscriptions the table holds by owner kind (a copy; no walk of the table). */
  byOwner(): Record<SubscriberKind, number> {
    return { ...this.owners };
  }

  /** Their weight by owner kind (a copy): what they make the node hold, in units of a short subscription. */
  weightByOwner(): Record<SubscriberKind, number> {
    return { ...this.weights };
  }

  add(sub: Subscription): void {
    if (sub.detached) return;
    let held = this.held.get(sub.owner, sub.pattern);
    if (held === undefined) {
      this.held.add((held = new OwnedPattern(sub.owner, sub.pattern)));
      if (WideSubscriptions.holds(sub.owner, sub.pattern)) this.wide.add(held);
      else this.trie.add(sub.pattern, held);
    }
    if (!held.add(sub)) return;
    this.subCount++;
    this.changed(sub.pattern);
    this.owners[sub.owner.kind]++;
    this.weigh(sub, 1);
    if (isLocalInterest(sub.owner.kind)) this.count(sub, 1);
  }

  remove(sub: Subscription): void {
    if (sub.detached) return;
    const held = this.held.get(sub.owner, sub.pattern);
    if (held === undefined || !held.remove(sub)) return;
    if (held.empty) {
      this.held.delete(held);
      if (WideSubscriptions.holds(sub.owner, sub.pattern)) this.wide.remove(held);
      else this.trie.remove(sub.pattern, held);
    }
    this.subCount--;
    this.changed(sub.pattern);
    this.owners[sub.owner.kind]--;
    this.weigh(sub, -1);
    if (isLocalInterest(sub.owner.kind)) this.count(sub, -1);
  }

  /** Listens to changes of local interest (for propagation to peers). */
  onInterest(listener: (c: InterestChange) => void): () => void {
    this.interest ??= this.counted();
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
      if (this.listeners.length === 0) this.interest = undefined;
    };
  }

  /** The local interest counted from the table. */
  private counted(): Map<string, number> {
    const m = new Map<string, number>();
    this.forEach((sub) => void (isLocalInterest(sub.owner.kind) && tally(m, sub, 1)));
    return m;
  }

  /** The current local interest: each (pattern, queue) pair local clients and internal receivers subscribe to. */
  localInterest(): Array<{ pattern: string; queue: string | undefined }> {
    return [...(this.interest ?? this.counted()).keys()].map((k) => {
      const i = k.indexOf('\u0000');
      return i < 0 ? { pattern: k, queue: undefined } : { pattern: k.slice(0, i), queue: k.slice(i + 1) };
    });
  }

  /** Every subscription, for views. */
  forEach(visit: (sub: Subscription) => void): void {
    forEachEntry(this.trie, (_p, held) => held.forEach(visit));
    this.wide.forEach((held) => held.forEach(visit));
  }

  /** Counts `sub`'s weight in (d = 1) or out (-1), and for a client its host's count and weight. */
  private weigh(sub: Subscription, d: 1 | -1): void {
    const w = weightOf(sub) * d;
    this.weights[sub.owner.kind] += w;
    const host = sub.owner.kind === 'client' ? sub.owner.host : undefined;
    if (host === undefined) return;
    this.perHost.add(host, d);
    this.perHostWeight.add(host, w);
  }

  private count(sub: Subscription, d: 1 | -1): void {
    if (this.interest === undefined) return;
    const n = tally(this.interest, sub, d);
    if ((d === 1 && n === 1) || (d === -1 && n === 0)) {
      const c: InterestChange = { op: d === 1 ? '+' : '-', pattern: sub.pattern, queue: sub.queue };
      for (const l of this.listeners) l(c);
    }
  }

  /**
   * The receivers of a frame's topic. `decode` gives the topic string on a cache
   * miss (and may throw a typed error for invalid topics, which is passed on).
   */
  routeFrame(frame: Frame, decode: (f: Frame) => string): Receivers {
    const cached = this.cache.get(frame);
    if (cached !== undefined) return cached;
    const topic = decode(frame);
    const receivers = this.route(topic);
    // A reply topic (`_INBOX.<client>.<n>.<token>`) is used once: caching it would only push the topics that
    // repeat out of the cache and keep its entry alive past young-generation GCs (promoted, then a mark-compact).
    if (!topic.startsWith(INBOX_PREFIX)) this.cache.set(frame, topic, receivers);
    return receivers;
  }

  /** The receivers of a literal topic (uncached). */
  route(topic: string): Receivers {
    const m = this.matched;
    this.trie.match(topic, this.collect);
    this.wide.match(topic, this.collect);
    try {
      if (m.length === 0) return NO_RECEIVERS;
      // One receiver's plain subscriptions to one pattern (a request's reply to its inbox, most literal topics): no maps.
      if (m.length === 1) {
        const held = m[0]!;
        if (held.plain && held.queues === undefined && held.sequenced.length === 0) {
          if (held.limited) return soleReceivers(held);
          // One object for every topic only `held` receives (until it changes): consecutive events on
          // different topics of it (a publisher cycling device or user topics, one wildcard subscriber) make one run.
          return (held.sole ??= soleReceivers(held));
        }
      }
      return receiversOf(m);
    } finally {
      m.length = 0;
    }
  }

  /** Counts changes of the table (every one goes through changed()): receivers found at one count hold while it does (MeshNode.publishRepeat). */
  get version(): number {
    return this.cache.changeCount;
  }

  /** Records a change of the subscriptions under `pattern`: cache entries of the topics it matches are stale. */
  private changed(pattern: string): void {
    this.cache.invalidate(pattern);
  }

  /** Drops cached receivers too old to be checked (ReceiversCache.sweep); from the node's timer. */
  sweepCache(now = Date.now()): void {
    this.cache.sweep(now);
  }

  /** `sub`, in the table, got a `max` (UNSUB with max): cached receivers of the topics it matches must list it in `limited`. */
  limitChanged(sub: Subscription): void {
    this.held.get(sub.owner, sub.pattern)?.limit(sub);
    this.changed(sub.pattern);
  }

  /**
   * `sub`, a partial-mesh peer's queue member, was announced again at
   * `distance`: cached receivers of the topics it matches are stale (their
   * remote tier is ranked by distance, GroupReceivers.remoteRanks).
   */
  distanceChanged(sub: Subscription, distance: number): void {
    sub.distance = distance;
    if (this.held.get(sub.owner, sub.pattern) !== undefined) this.changed(sub.pattern);
  }

  /**
   * Picks the member of a group that gets the next event: round robin, local
   * members first (peers of a partial mesh: the nearest, GroupReceivers.remoteRanks). One whose receiver takes a payload of `payloadLen` bytes
   * (a peer link: the peer's maxPayload) is preferred; when none does, one
   * that does not is returned, and its link skips the event and counts it
   * (cluster/README.md "Limits"), rather than the event vanishing uncounted.
   * Among those, one whose receiver is not backed up is preferred, else the
   * least loaded: a member that stopped reading was still picked in turn
   * (once it no longer held the publisher back, it did not even count as
   * congested), so with 'drop' half the group's events were dropped while
   * the other member could take them (the NATS Streaming fault "Stalled
   * Queue member may stall the group"). The tier itself is the nearest in
   * reach with a member that is not passed over (Subscriber.passedOver) and
   * takes the payload, else the nearest with any member: a passed-over leaf,
   * or a member that would skip the event, is taken only when no other is in
   * reach (so a hub's leaf whose maxPayload is smaller than the event gives
   * way to a peer's member that takes it, where it got the event and skipped it).
   */
  pick(group: GroupReceivers, f: Frame, skip?: Subscriber, scope: DeliveryScope = 'all'): Subscription | undefined {
    // Nearest first: this node's members, else the region's, else another region's. Members only
    // `skip` owns (a publisher with echo off, the link the event came on), or whose own rules refuse
    // the event (Subscriber.admits), leave their tier empty: a copy from a link is no group's
    // (SPEC 10.3), so no other node would pick for the group.
    const payloadLen = f.payloadLen;
    let tier = tierOf(group, skip, f, scope);
    // A partial mesh's peers at several distances: the nearest that has a member, so a copy moves toward one.
    if (tier === group.remote && group.remoteRanks !== undefined) tier = nearestRank(group.remoteRanks, tier, skip, f);
    const n = tier.length;
    if (n === 0) return undefined;
    const last = tier[n - 1]!;
    // Round robin over the members; a receiver that cannot take the event is passed over with all its members at once.
    const at = group.next;
    group.next = (at + 1) & 0x7fffffff;
    const k = at % (last.before + last.subs.length);
    const first = entryAt(tier, k);
    let unfit: Subscription | undefined;
    let busy: Subscription | undefined;
    for (let j = 0; j < n; j++) {
      const e = tier[(first + j) % n]!;
      if (e.owner === skip || !admitted(e.owner, f)) continue;
      const m = e.subs[j === 0 ? k - e.before : k % e.subs.length]!;
      if (!takesPayload(e.owner, payloadLen)) unfit ??= m;
      else if (!e.owner.backedUp && e.owner.passedOver !== true) return m;
      else if (busy === undefined || (e.owner.pending ?? 0) < (busy.owner.pending ?? 0)) busy = m;
    }
    const m = busy ?? unfit;
    // No member took it: the turn was nobody's (a leaf's hand-back tried here first, then passed on,
    // moved the position twice per copy, so two remote members took turns on one of them).
    if (m === undefined) group.next = at;
    return m;
  }
}

/** Counts `sub` in (d = 1) or out (-1) of `interest` under its (pattern, queue); the count now. */
function tally(interest: Map<string, number>, sub: Subscription, d: 1 | -1): number {
  const key = sub.queue === undefined ? sub.pattern : `${sub.pattern}\u0000${sub.queue}`;
  const n = (interest.get(key) ?? 0) + d;
  if (n > 0) interest.set(key, n);
  else interest.delete(key);
  return n;
}

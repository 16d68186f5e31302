import type { OwnedPattern } from './owned-pattern.js';
import type { GroupMembers, GroupReceivers, LimitedPattern, Receivers } from './receivers.js';
import type { DropTag, Subscriber, Subscription } from './subscriber.js';

// The receivers a route hands out for the (owner, pattern) entries the tries matched for a topic (RoutingTable.route).

const NONE: readonly never[] = [];

type Tier = Map<Subscriber, Subscription[] | readonly Subscription[]>;

/** Adds `members` (one owner's, in one group) to `tier`: one entry per owner (arrays joined into a new one, never changed in place). */
function addMembers(tier: Tier, owner: Subscriber, members: readonly Subscription[]): void {
  const had = tier.get(owner);
  tier.set(owner, had === undefined ? members : had.concat(members));
}

function tierOf(tier: Tier): readonly GroupMembers[] {
  if (tier.size === 0) return NONE;
  const out: GroupMembers[] = [];
  let before = 0;
  for (const [owner, subs] of tier) {
    out.push({ owner, subs, before });
    before += subs.length;
  }
  return out;
}

/** The distance of an owner's members (Subscription.distance): the nearest; 0 when unranked. */
function nearest(subs: readonly Subscription[]): number {
  let d = Infinity;
  for (let i = 0; i < subs.length; i++) d = Math.min(d, subs[i]!.distance ?? 0);
  return d;
}

/** `tier` split by its owners' distance, nearest first (GroupReceivers.remoteRanks); undefined when all are at one. */
function ranksOf(tier: readonly GroupMembers[]): readonly (readonly GroupMembers[])[] | undefined {
  if (tier.length < 2) return undefined;
  // Unranked (a full mesh), or all at one distance: nothing made.
  const d0 = nearest(tier[0]!.subs);
  let i = 1;
  while (i < tier.length && nearest(tier[i]!.subs) === d0) i++;
  if (i === tier.length) return undefined;
  const dist = tier.map((e) => nearest(e.subs));
  return [...new Set(dist)]
    .sort((a, b) => a - b)
    .map((d) => {
      const rank: GroupMembers[] = [];
      let before = 0;
      for (let i = 0; i < tier.length; i++) {
        if (dist[i] !== d) continue;
        rank.push({ owner: tier[i]!.owner, subs: tier[i]!.subs, before });
        before += tier[i]!.subs.length;
      }
      return rank;
    });
}

/** A group's receivers: its tiers, and its remote one ranked by distance when its members are at several. */
function groupOf(name: string, g: { local: Tier; remote: Tier; far: Tier }): GroupReceivers {
  const remote = tierOf(g.remote);
  // Always present (undefined when unranked): one object shape for pick.
  return { name, local: tierOf(g.local), remote, far: tierOf(g.far), remoteRanks: ranksOf(remote), next: (Math.random() * 0x7fffffff) | 0 };
}

/** The DropTag of a receiver matched through two patterns (`tag` one pattern's sids): by reference, no sid copied. */
function joinTags(had: DropTag, tag: readonly number[]): DropTag {
  // A first pattern's tag holds sids only; a joined one holds lists only (made here).
  return typeof had[0] === 'number' ? [had as readonly number[], tag] : [...had, tag];
}

/** `to` (made when undefined) with `more` added at its end (a loop: a spread of 100,000 arguments overflows the stack). */
function append<T>(to: T[] | undefined, more: readonly T[]): T[] {
  const out = to ?? [];
  for (let i = 0; i < more.length; i++) out.push(more[i]!);
  return out;
}

/** The receivers of `matched`, each one owner's subscriptions to one pattern (several, or some not plain). */
export function receiversOf(matched: readonly OwnedPattern[]): Receivers {
  // Per plain receiver: the sids of its matching 'drop' subscriptions, or null once one of them is firm.
  let plain: Map<Subscriber, DropTag | null> | undefined;
  let groups: Map<string, { local: Tier; remote: Tier; far: Tier }> | undefined;
  let sequenced: Subscription[] | undefined;
  let limited: LimitedPattern[] | undefined;
  for (const held of matched) {
    const owner = held.owner;
    if (held.sequenced.length > 0) sequenced = append(sequenced, held.sequenced);
    if (held.plain) {
      plain ??= new Map();
      const had = plain.get(owner);
      const tag = held.dropTag ?? null;
      if (had === undefined) plain.set(owner, tag);
      else if (had !== null) plain.set(owner, tag === null ? null : joinTags(had, tag));
      if (held.limited) (limited ??= []).push(held);
    }
    const queues = held.queues;
    if (queues === undefined) continue;
    groups ??= new Map();
    for (const [name, members] of queues) {
      let g = groups.get(name);
      if (!g) groups.set(name, (g = { local: new Map(), remote: new Map(), far: new Map() }));
      const kind = owner.kind;
      addMembers(kind === 'peer' ? g.remote : kind === 'gateway' ? g.far : g.local, owner, members);
    }
  }
  const owners = plain ? [...plain.keys()] : [];
  return {
    plain: owners,
    plainDrop: plain ? [...plain.values()].map((t) => t ?? undefined) : NONE,
    groups: groups ? [...groups].map(([name, g]) => groupOf(name, g)) : NONE,
    sequenced: sequenced ?? NONE,
    limited: limited ?? NONE,
    linksOnly: !groups && !sequenced && owners.every((o) => o.forwardRaised !== undefined),
  };
}

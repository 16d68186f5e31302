import type { DropTag, Subscriber, Subscription } from './subscriber.js';

// What the routing table hands an event to: types only, in a module of their own so
// that the table's parts (owned-pattern, receivers-of) need not import the table.

/**
 * The receivers of one topic (what routing hands an event to), computed once
 * and cached until a change of the table matches the topic. (Not a "route": in a mesh, a route is a
 * server-to-server link.)
 */
export interface Receivers {
  /** Subscribers with at least one plain subscription that matches, each once. */
  readonly plain: readonly Subscriber[];
  /**
   * Per entry of `plain`: the sids of its matching subscriptions when every
   * one is a client's 'drop' subscription (the event may be dropped for it
   * and never holds the publisher back, SPEC §10.6), else undefined.
   */
  readonly plainDrop: readonly (DropTag | undefined)[];
  /** One entry per queue group with a matching member. */
  readonly groups: readonly GroupReceivers[];
  /** Subscriptions with a durable position (SUB `since`): each gets its own sid-addressed delivery. */
  readonly sequenced: readonly Subscription[];
  /** Patterns of plain subscriptions with a `max` (their owners are in `plain`): each delivery is `counted` against them. */
  readonly limited: readonly LimitedPattern[];
  /** Every receiver is a plain one that forwards to another node (`forwardRaised`): no group, no sequenced, no local receiver. */
  readonly linksOnly: boolean;
}

/** One owner's plain subscriptions with a `max` on one pattern (owned-pattern.ts). */
export interface LimitedPattern {
  readonly owner: Subscriber;
  /** One plain delivery to the owner through the pattern: counted against each, those at their max end. */
  counted(): void;
}

export interface GroupReceivers {
  readonly name: string;
  /** Members owned by local clients, internal receivers or leaves: preferred. */
  readonly local: readonly GroupMembers[];
  /** Members owned by peers of this node's mesh: used only when no local member exists. */
  readonly remote: readonly GroupMembers[];
  /** Members behind gateway links (other regions): used only when the region has none. */
  readonly far: readonly GroupMembers[];
  /**
   * `remote` split by distance (Subscription.distance, partial mesh), nearest
   * first, each rank with its own `before`: pick takes the nearest rank that
   * has a member. Undefined when every remote member is at one distance.
   */
  readonly remoteRanks?: readonly (readonly GroupMembers[])[] | undefined;
  /**
   * The group's round-robin position (RoutingTable.pick), its own: one
   * counter shared by every group made two groups on a topic take turns on
   * it, so each always landed on the same member. Starts at random, so the
   * first event of each new topic does not go to the same member.
   */
  next: number;
}

/**
 * One receiver's members of a queue group (for one topic): a pick looks at
 * each receiver once, so members a publisher with echo off holds itself are
 * passed over in one step however many there are (before, each was: 9,990
 * such members made every pick walk 9,990 entries).
 */
export interface GroupMembers {
  readonly owner: Subscriber;
  readonly subs: readonly Subscription[];
  /** How many members come before these in their tier (the round robin counts members, not receivers). */
  readonly before: number;
}

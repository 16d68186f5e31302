import type { Frame } from '@meshbus/proto';

/**
 * Who receives: a client connection (TCP or WebSocket), a peer link (in a
 * cluster), a link to a leaf node (on its hub: cluster/README.md, "Leaf
 * nodes"), or a receiver inside the node ('internal': HTTP inbox, HTTP
 * trace, the node's own publishes). Clients and internal receivers are the
 * local interest the routing table reports to the cluster. Leaves are local
 * for delivery (an event from a peer reaches them; preferred over peers in
 * queue groups) and their interest is announced by the cluster itself. A
 * gateway link joins another region's mesh: its members come last in queue
 * groups, and an event that came from another region never goes out to one.
 */
export type SubscriberKind = 'client' | 'peer' | 'leaf' | 'gateway' | 'internal';

/**
 * Anything the routing table delivers events to. One interface, so routing
 * does not care which kind.
 */
export interface Subscriber {
  readonly kind: SubscriberKind;
  /** Unique per node; used to deliver an event once per subscriber. */
  readonly uid: number;
  /**
   * Hands over one event. `sid` is 0 for plain delivery, or the member
   * subscription chosen for a queue group. `drop`: every subscription of
   * this receiver the event is for chose 'drop' (these sids): it may be
   * dropped rather than held (SPEC §10.6); undefined: the receiver's own rule.
   * Must not throw.
   */
  deliver(frame: Frame, sid: number, drop?: DropTag): void;
  /**
   * Links to other nodes only (peer links): a plain delivery whose bytes the
   * node already made the forwarded frame (hops raised in place, sid 0:
   * MeshNode.deliver, when every receiver of an event is a link), sent as
   * they are, no copy. Must not throw.
   */
  forwardRaised?(frame: Frame): void;
  /**
   * Links to other nodes only: `count` events back to back in `first.buf`
   * from `first.start` to `end` (on `first`'s topic, or on several when
   * `deliversAnyTopic`), each one's hops already
   * raised in place (publish-run.ts), sent as they are, as that many
   * `forwardRaised` calls would (the run holds no event over `maxPayload`).
   * Must not throw.
   */
  forwardRaisedRange?(first: Frame, end: number, count: number): void;
  /**
   * True when which events this receiver takes depends on nothing but the
   * routing table (no per-topic delivery filter: token deny rules, reserved
   * topics): a run may then hold events of several topics (publish-run.ts),
   * each as it arrived. Read when a run starts.
   */
  readonly deliversAnyTopic?: boolean;
  /**
   * False when this receiver's own rules refuse `frame` (a client's token,
   * the node's reserved topics, a dead letter of a topic it may not read):
   * it would drop the event. A queue group passes over such a member
   * (RoutingTable.pick, durable queues): before, it was picked, dropped the
   * event uncounted, and a member whose token denies part of the group's
   * pattern swallowed those events (a durable queue's were dead-lettered,
   * readable on `_DLQ.<group>`). Undefined: takes every event.
   */
  admits?(frame: Frame): boolean;
  /**
   * Client sessions only: plain deliveries of `count` events that lie back
   * to back in `first.buf` from `first.start` to `end`, all on `first`'s
   * topic unless `deliversAnyTopic` (publish-run.ts), as that many `deliver(frame, 0)` calls would
   * queue them. Must not throw.
   */
  deliverRange?(first: Frame, end: number, count: number): void;
  /** True while the receiver's queue is past its high-water mark. */
  readonly congested: boolean;
  /**
   * Connections: bytes queued toward the other end, and whether they are past
   * the high-water mark even once the receiver no longer holds publishers back
   * (`congested` is then false). Queue groups prefer members that are not
   * backed up, then the least loaded (RoutingTable.pick). Undefined: never backed up.
   */
  readonly pending?: number;
  readonly backedUp?: boolean;
  /**
   * A queue member that takes its group's events only when no member of
   * another tier could (RoutingTable.pick): a keyed leaf far behind on the
   * copies its hub must remember to take back (cluster sent-copies.ts), whose
   * further copies would be lost if handed back. Undefined: never.
   */
  readonly passedOver?: boolean;
  /** Registers a publisher to be told when this receiver is no longer congested. */
  addWaiter(w: Throttled): void;
  /**
   * The largest payload this receiver takes, bytes (a peer link: what its
   * peer said in HELLO/WELCOME); undefined: any. Queue groups prefer members
   * whose receiver takes the event (RoutingTable.pick).
   */
  readonly maxPayload?: number;
  /**
   * Client connections: the host they come from (IPv4 address, or IPv6 /64:
   * addressKey), what the per-host bounds count; set when the node admits it.
   */
  readonly host?: string;
  /** How message traces name this receiver, e.g. "client 3f2a…" or "peer 9c01…". */
  readonly label?: string;
  /** Client connections: the client id of their WELCOME (their inbox is `_INBOX.<clientId>.…`). */
  readonly clientId?: string;
  /**
   * A plain delivery matched `sub`, a subscription with a `max`: count it
   * (and end the subscription at its max). Queue and other sid-addressed
   * deliveries are counted by `deliver` itself.
   */
  countDelivery?(sub: Subscription): void;
}

/** A sender that can be paused while one of its receivers catches up. */
export interface Throttled {
  /** `receiver` drained (or went away): stop waiting for it. */
  unblock(receiver: Subscriber): void;
}

/** Where an event came from: a client session or a peer link. Both can be paused. */
export interface EventSource extends Throttled {
  /** Pauses reading from this source until `receiver` is no longer congested. */
  blockOn(receiver: Subscriber): void;
  /** False when the source asked not to receive its own events back (clients: HELLO echo=false). */
  readonly echo: boolean;
}

export type SlowPolicy = 'drop' | 'disconnect';

/**
 * Who loses an event if it is dropped: the sids of the connection's 'drop'
 * subscriptions it was sent for (all of them chose 'drop'; empty when the
 * queue's own policy is 'drop', e.g. a peer link). An event sent without one
 * on a 'disconnect' queue is *firm*: never dropped. An element may be a list
 * of sids itself: the routing table joins the tags of a receiver's several
 * matching patterns by reference (owned-pattern.ts), never copying their
 * sids, and a drop is recorded per tag, its sids counted at report time
 * (drop-reports.ts).
 */
export type DropTag = readonly (number | readonly number[])[];


/**
 * A subscription that gets each event as its own sid-addressed delivery,
 * through a sequencer that keeps durable positions in order (SUB `since`).
 */
export interface SequencedReceiver {
  offer(frame: Frame): void;
  cancel(): void;
}

/** One subscription: a pattern, an optional queue group and its owner. */
export interface Subscription {
  readonly sid: number;
  readonly pattern: string;
  readonly queue: string | undefined;
  readonly owner: Subscriber;
  readonly slow: SlowPolicy;
  /** Set on subscriptions with a durable position: routed apart from plain ones. */
  readonly sequencer?: SequencedReceiver;
  /** Not in the routing table: a durable work-queue member, fed by its queue's worker. */
  readonly detached?: boolean;
  /** A client's 'drop' subscription: `[sid]`, the DropTag of deliveries addressed to it (made once, by the routing table). */
  dropTag?: DropTag;
  /** SUB/UNSUB `max`: the subscription ends after this many deliveries (counted in `delivered`). */
  max?: number;
  delivered?: number;
  /**
   * A queue member a partial-mesh peer announced: links from this node to the
   * nearest member behind it (INTEREST `distance`). A group's peers are picked
   * nearest first (RoutingTable.pick), so a copy moves toward a member; changed
   * through RoutingTable.distanceChanged only. Undefined: not ranked.
   */
  distance?: number;
}

/** A link to another node (peer, leaf or gateway): never sent back what it sent. */
export function isLink(kind: SubscriberKind): boolean {
  return kind === 'peer' || kind === 'leaf' || kind === 'gateway';
}

/** Who an event from `from` does not go back to: the link it came on, or a client that asked for no echo (HELLO echo=false). */
export function echoSkip(from: (Subscriber & EventSource) | undefined): Subscriber | undefined {
  return from && (isLink(from.kind) || !from.echo) ? from : undefined;
}

/**
 * Whether `r` takes a payload of `payloadLen` bytes (its `maxPayload`). A
 * peer link over whose limit an event is skips it (counted there): it is no
 * receiver, so a REQ nobody else gets hears MB_ERR_NO_RESPONDERS.
 */
/** Whether `r` takes `f` as far as its own rules go (Subscriber.admits). */
export function admitted(r: Subscriber, f: Frame): boolean {
  return r.admits === undefined || r.admits(f);
}

export function takesPayload(r: Subscriber, payloadLen: number): boolean {
  const max = r.maxPayload;
  return max === undefined || payloadLen <= max;
}

import type { Frame } from '@meshbus/proto';
import type { GroupReceivers, MeshNode, Receivers } from '@meshbus/core';
import type { MeshMode } from './options.js';
import type { PeerLink } from './peer-link.js';

/**
 * The re-sent marker (SPEC 10.3): the top bit of the `sid` of a queue-group
 * copy between two nodes that both say `resentMark` in their peer info. Set
 * only on the copy memberGone passes on; the id below it is the one the
 * receiver announced for (pattern, group), as on any queue copy. A node
 * announces ids below it (interest-exchange.ts), so the bit is free.
 */
export const RESENT = 0x80000000;

const NONE: readonly never[] = [];

/** Whether the node at the other end of `link` reads and writes the re-sent marker (peer info `resentMark`). */
export function marksResent(link: PeerLink): boolean {
  return link.peer?.resentMark === true;
}

/**
 * Whether the queue copy `f` that came over `from` was already passed on once
 * by a node whose member had ended: its sid carries RESENT. From a node that
 * does not know the marker (an older version), the rule it sends by: sid set
 * and hops 2 or more (so an ordinary copy that crossed two links, leaf → hub
 * → peer or gateway → node → peer, counts as re-sent from it, as before).
 */
export function resentCopy(from: PeerLink, f: Frame): boolean {
  const sid = f.sid;
  if (sid === 0) return false;
  return marksResent(from) ? sid >= RESENT : f.hops >= 2;
}

/** The id `f` names (what this node announced to `from` for a (pattern, group)), without the re-sent marker. */
export function announcedId(from: PeerLink, f: Frame): number {
  const sid = f.sid;
  return sid >= RESENT && marksResent(from) ? sid - RESENT : sid;
}

/**
 * A queue-group event for `queue` reached this node from `from` and none of
 * its members here could take it: the one it was sent for ended — reached
 * its `max` or unsubscribed while the peer, not yet told, was sending (SPEC
 * 10.3). As with NATS, the ended member never gets it. In a full mesh it goes
 * on once to a member on another node of the mesh (the sender included, if
 * it has one now), marked as re-sent (RESENT; to a node that does not know
 * the marker, its hops, 2 or more, say it): a re-sent copy (`resent`) is not
 * passed on again. A leaf passes it back to its hub (if the group has a
 * member elsewhere), marked; the hub gives it to a member of its own (its
 * clients, its other leaves: deliverToGroup, scope 'local') and else passes it
 * on once, marked, to a peer or another region (never back to the leaf): a
 * hub prefers its leaves' members, so without this all it sends a leaf before
 * the leaf's `max` withdrawal arrives would be lost. Otherwise it is counted
 * as dropped (`dropped.noQueueMember`, meshbus_dropped_total{reason="no_queue_member"}).
 */
export function memberGone(node: MeshNode, mode: MeshMode, f: Frame, route: Receivers, queue: string, from: PeerLink, resent: boolean): void {
  if (mode === 'leaf' ? !resent : mode === 'full' && (!resent || from.kind === 'leaf')) {
    const g = route.groups.find((x) => x.name === queue);
    // Peers (a leaf: its hub), else, for a leaf's event on its hub, other regions: never this node's own, tried already.
    const group: GroupReceivers | undefined = g && { ...g, local: NONE, far: from.kind === 'leaf' ? g.far : NONE };
    const m = group && group.remote.length + group.far.length > 0 ? node.table.pick(group, f) : undefined;
    // The pick moved the copy's position: the group's own must move too, or every re-sent copy goes to one member.
    if (g && group) g.next = group.next;
    if (m) {
      // Only a link is in those tiers.
      m.owner.deliver(f, m.sid < RESENT && marksResent(m.owner as PeerLink) ? m.sid + RESENT : m.sid);
      return;
    }
  }
  node.stats.dropped.noQueueMember++;
}

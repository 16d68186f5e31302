import type { Frame } from '@meshbus/proto';
import type { MeshNode, Receivers } from '@meshbus/core';
import type { MeshMode } from './options.js';
import type { PeerLink } from './peer-link.js';

/**
 * A queue-group event for `queue` reached this node from `from` after its
 * last member here ended — reached its `max` or unsubscribed while the peer,
 * not yet told, was sending (SPEC 10.3). As with NATS, the ended member never
 * gets it. In a full mesh it goes on once to a member on another node (the
 * sender included, if it has one now): an event already passed on (hops
 * ≥ 2) is not passed again. A leaf passes it back to its hub (if the group
 * has a member elsewhere), and the hub on to a member of the mesh (never
 * back to the leaf: deliverToGroup skipped it): a hub prefers its leaves'
 * members, so without this all it sends a leaf before the leaf's `max`
 * withdrawal arrives would be lost. Otherwise it is counted as dropped
 * (`dropped.noQueueMember`, meshbus_dropped_total{reason="no_queue_member"}).
 */
export function memberGone(node: MeshNode, mode: MeshMode, f: Frame, route: Receivers, queue: string, from: PeerLink): void {
  if (mode === 'leaf' || (mode === 'full' && (f.hops < 2 || from.kind === 'leaf'))) {
    const g = route.groups.find((x) => x.name === queue);
    const m = g && g.remote.length > 0 ? node.table.pick({ name: queue, local: [], remote: g.remote, far: [] }, f) : undefined;
    if (m) {
      m.owner.deliver(f, m.sid);
      return;
    }
  }
  node.stats.dropped.noQueueMember++;
}

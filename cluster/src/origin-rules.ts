import type { Frame } from '@meshbus/proto';
import type { PeerLink } from './peer-link.js';

/** What the origin rule needs to know of this node's region. */
export interface RegionView {
  readonly selfId: string;
  /** Up links to the nodes of the mesh, by id. */
  readonly byPeer: ReadonlyMap<string, PeerLink>;
  /** Nodes of the mesh learned by gossip, by id. */
  readonly known: ReadonlyMap<string, unknown>;
  /** Leaf nodes linked to this node (as their hub), by id. */
  isLeaf(id: string): boolean;
}

/**
 * Whether event `f`, which came over `link` (full mesh; not a re-sent queue
 * copy) stamped by another node than the link's own, carries an origin that
 * link can never carry:
 * - this node's own (an echo);
 * - over a gateway, a node of this region (the mesh's, or this node's
 *   leaves): another region never relays this one's events back;
 * - over a link of the mesh, a node this node is linked to directly: one
 *   hop, a peer relays only its leaves' events and other regions'
 *   (cluster/README.md).
 * Such an event is a forgery or an echo. Admitted, its sequence filed under
 * that origin's per-publisher order: one stamped far ahead made every node
 * drop the real origin's events as old (a review: 0 of 10 delivered), and an
 * echo was delivered twice. Partial meshes relay every origin and are not
 * checked here (their duplicate filter, dedup-window.ts).
 */
export function impossibleOrigin(link: PeerLink, f: Frame, region: RegionView): boolean {
  const origin = f.origin;
  if (origin === region.selfId) return true;
  if (link.kind === 'gateway') return region.byPeer.has(origin) || region.known.has(origin) || region.isLeaf(origin);
  // Not this node's leaves: one that failed over to a peer while its old link here is half-open (not yet found
  // stale) is relayed by that peer, and dropping those lost its events here for seconds (a review).
  if (link.kind === 'peer') return region.byPeer.has(origin);
  return false;
}

/**
 * Whether a leaf that says it is `id` would take the identity of a node of
 * this mesh (this node, a linked or gossiped node): refused, its events would
 * be filed under that node's order and relayed to the whole mesh as that
 * node's (a review: one forged event silenced the node everywhere).
 */
export function leafImpersonates(id: string, region: Omit<RegionView, 'isLeaf'>): boolean {
  return id === region.selfId || region.byPeer.has(id) || region.known.has(id);
}

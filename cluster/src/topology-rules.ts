import type { MeshMode } from './options.js';
import type { PeerLink } from './peer-link.js';

/**
 * Which authenticated links a node keeps (cluster/README.md, "Three modes",
 * "Leaf nodes"): the configurations that would loop or duplicate events are
 * refused (MB_ERR_TOPOLOGY), and of two links to one node both ends keep the
 * same one.
 */

/**
 * Why a node in `mode` must refuse `link` (its peer authenticated), or
 * undefined when the link may live. Region and gateway rules are gateways.ts's.
 */
export function topologyProblem(mode: MeshMode, link: PeerLink): string | undefined {
  const peer = link.peer!;
  // A leaf is the end of a branch: a link into it would let events loop (or a leaf chain form).
  if (mode === 'leaf' && link.role === 'acceptor') return 'this node is a leaf: it accepts no links (point --seeds of other nodes at a hub)';
  // The same rule from the dialer's end, decided here before the link counts as up: the leaf refuses it
  // anyway, and a hub that let it come up first said "leaf link up" / "leaf link down" at every redial.
  if (mode !== 'leaf' && peer.leaf && link.role === 'dialer') return `${link.target ?? 'this address'} is a leaf node: a leaf dials its hub, never the other way (remove it from --seeds)`;
  if (peer.leaf && mode === 'leaf') return 'a leaf cannot be the hub of another leaf';
  // A leaf key makes a leaf and nothing else (leaf-keys.ts): taken by a partial mesh it would be a peer that relays every origin.
  if (peer.keyLabel !== undefined && mode !== 'full') return 'a leaf key links a leaf to a hub of a full mesh only';
  // A partial node forwards what a full node delivered to it to the full node's peers, which had it already.
  if (mode !== 'leaf' && !peer.leaf && peer.mesh !== undefined && peer.mesh !== mode) {
    return `a ${mode}-mesh node and a ${peer.mesh}-mesh node cannot link (events would arrive twice): give every node of a mesh the same --mesh; an edge node under a full mesh is --mesh leaf`;
  }
  return undefined;
}

/**
 * Of `existing` and a newer `link` to the same node, whether the newer one
 * replaces it. A link silent past 1.5 ping intervals (`pingInterval`, ms) is
 * suspect (stalled, or its other end gave up on it) and is replaced. Otherwise
 * both ends keep the link dialed by the smaller node id, whatever made two
 * (both dialed at once; a node reached at two addresses: a DNS name, a
 * proxy), so they never each close the link the other keeps.
 */
export function keepsNewLink(selfId: string, link: PeerLink, existing: PeerLink, pingInterval: number): boolean {
  const stale = existing.silentFor(Date.now()) > 1.5 * pingInterval;
  return stale || (link.role === 'dialer') === selfId < link.peer!.id;
}

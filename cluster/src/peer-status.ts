import type { PeerInfo } from './peer-info.js';
import type { PeerLink } from './peer-link.js';

/** One peer as the cluster sees it, for views and metrics. */
export interface PeerStatus {
  id: string;
  name: string;
  address: string;
  client: string;
  state: 'connecting' | 'up' | 'down';
  rttMs: number | undefined;
  since: number;
  msgsIn: number;
  msgsOut: number;
  /** Bytes queued toward the peer and not yet written; events dropped toward it. */
  pending?: number;
  dropped?: number;
  /** The largest payload the peer accepts (its HELLO/WELCOME; 1 MiB for an older node), and events not sent to it because they were larger. */
  maxPayload?: number;
  tooLarge?: number;
  /** Set on a hub for the link of a leaf node. */
  leaf?: true;
  /** Set for a gateway link: the region at its other end. */
  gateway?: string;
}

/**
 * The peers of a node for views and metrics: every authenticated link that is
 * up (never a connection that merely claimed a name), then the nodes known
 * from gossip without a link, as 'down'.
 */
export function peerStatuses(links: Iterable<PeerLink>, known: Iterable<PeerInfo>): PeerStatus[] {
  const out: PeerStatus[] = [];
  const seen = new Set<string>();
  // Only authenticated links: a connection that merely claimed a name is never shown.
  for (const l of links) {
    if (!l.peer || l.state !== 'up') continue;
    seen.add(l.peer.id);
    out.push({
      id: l.peer.id,
      name: l.peer.name,
      address: l.peer.cluster,
      client: l.peer.client,
      state: 'up',
      rttMs: l.rttMs,
      since: l.since,
      msgsIn: l.msgsIn,
      msgsOut: l.msgsOut,
      pending: l.pending,
      dropped: l.dropped,
      maxPayload: l.peerMaxPayload,
      tooLarge: l.tooLargeOut,
      ...(l.kind === 'leaf' ? { leaf: true as const } : {}),
      ...(l.kind === 'gateway' ? { gateway: l.region! } : {}),
    });
  }
  for (const p of known) {
    if (seen.has(p.id)) continue;
    out.push({ id: p.id, name: p.name, address: p.cluster, client: p.client, state: 'down', rttMs: undefined, since: 0, msgsIn: 0, msgsOut: 0 });
  }
  return out;
}

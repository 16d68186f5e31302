/**
 * What the HTTP API and the dashboard need to know about the cluster a node
 * belongs to. Implemented by @meshbus/cluster; a node without a cluster has
 * none, and is ready as soon as it listens.
 */
export interface ClusterView {
  /** True once the node has joined the cluster (its configured peers answered or it gave up waiting). */
  ready(): boolean;
  /** Optional: ready() but false when the node only gave up waiting (no peer answered). Absent: ready(). */
  joined?(): boolean;
  /** The peers this node knows, one entry per peer link. */
  peers(): PeerView[];
  /**
   * Optional: every link known in the mesh (also between other nodes), for
   * the topology graph. Absent: only this node's own links are drawn.
   */
  links?(): LinkView[];
  /**
   * Optional: what this node tells its peers about itself (the cluster's
   * peer info): `client`, the address its clients are told to use
   * (`--client-advertise`, else the `--advertise` host with a wildcard
   * `--host`, else host:port); `cluster`, the address peers dial.
   */
  readonly self?: { readonly client: string; readonly cluster: string };
}

export type LinkState = 'connecting' | 'up' | 'down';

/** One peer of this node, as seen from this node. */
export interface PeerView {
  /** The peer's node id (16 hex digits); may be a placeholder while connecting. */
  id: string;
  name?: string;
  /** host:port of the peer's cluster listener. */
  address: string;
  /** The address the peer's clients use (its peer info's `client`), when known. */
  client?: string;
  state: LinkState;
  /** Last measured round-trip time of the link, ms. */
  rttMs?: number;
  /** When the link entered `state`, ms since the epoch. */
  since: number;
  /** Events received from / sent to this peer. */
  msgsIn: number;
  msgsOut: number;
  /** Bytes queued toward this peer and not yet written (its link's outbound queue and socket), when the link is up. */
  pending?: number;
  /** Events dropped toward this peer (its link's queue past its bound). */
  dropped?: number;
}

/** A link between two nodes of the mesh. */
export interface LinkView {
  from: string;
  to: string;
  state: LinkState;
  rttMs?: number;
}

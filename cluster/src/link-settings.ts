import type { AuthThrottle, InputBudget, Logger, OutboundBudget, Permissions, ToldRecently } from '@meshbus/core';
import type { FrameScanner } from '@meshbus/proto';
import type { PeerInfo } from './peer-info.js';

/** What every peer link of a node shares: who the node is, how links authenticate, their bounds (cluster-node.ts makes it). */
export interface LinkSettings {
  self: PeerInfo;
  secret: string | undefined;
  /** A leaf that proves a leaf key (leaf-keys.ts): its secret, used on its links instead of `secret`. */
  leafKeySecret?: string;
  /** Leaf key labels this node refuses (ClusterOptions.deniedLeafKeys). */
  deniedLeafKeys?: ReadonlySet<string>;
  /** Keyed leaves' rules by label (ClusterOptions.leafPermissions, leaf-rules.ts). */
  leafPermissions?: ReadonlyMap<string, Permissions>;
  /** The node's failed-auth limiter (shared with clients and the HTTP API): an acceptor charges a wrong cluster-secret proof to the dialer's address and refuses an address out of attempts. */
  authThrottle?: AuthThrottle;
  pingInterval: number;
  handshakeTimeout: number;
  maxPending: number;
  maxStall: number;
  maxFrameLength: number;
  /** The node's input budget (core input-budget.ts, SPEC 9.5): a link's unfinished frame is charged to it like a client's. */
  budget?: InputBudget;
  /** The node's outbound budget its link queues join (SPEC 10.6). */
  outbound?: OutboundBudget;
  scanner: FrameScanner;
  logger: Logger;
  /**
   * Handshake failures of accepted links already logged, by remote address,
   * code and message: a misconfigured node redialing (bad peer info, a
   * handshake that never completes) is said once per way of failing every
   * few minutes, not once per attempt.
   */
  acceptFailuresTold?: ToldRecently;
}

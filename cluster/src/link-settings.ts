import { ToldRecently, outboundBudgetOf, type AuthThrottle, type InputBudget, type Logger, type MeshNode, type OutboundBudget, type Permissions } from '@meshbus/core';
import { Repeats, repeatingScanner, type FrameScanner } from '@meshbus/proto';
import { leafKeySettings } from './leaf-keys.js';
import type { ResolvedClusterOptions } from './options.js';
import type { PeerInfo } from './peer-info.js';
import { REPORT_EVERY } from './redialer.js';

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

/** The settings of `node`'s peer links, `self` being what it tells peers. */
export function linkSettings(node: MeshNode, o: ResolvedClusterOptions, self: PeerInfo): LinkSettings {
  return {
    self,
    secret: o.secret,
    ...leafKeySettings(o),
    authThrottle: node.authThrottle,
    pingInterval: o.pingInterval,
    handshakeTimeout: o.handshakeTimeout,
    // A link carries any frame the node takes: at least two of the largest (a 100 MiB event closed 64 MiB links).
    maxPending: Math.max(o.maxPending, 2 * node.maxFrameLength),
    maxStall: node.options.maxStall,
    maxFrameLength: node.maxFrameLength,
    budget: node.inputBudget,
    outbound: outboundBudgetOf(node.inputBudget, node.options.outboundBudget),
    // Asked for repeated headers but for what each origin stamps (SCAN_REPEAT): a peer's next event in a run skips its checks (ClusterNode.peerEvent).
    scanner: repeatingScanner(node.scanner, Repeats.UNSTAMPED),
    logger: node.logger,
    acceptFailuresTold: new ToldRecently(REPORT_EVERY),
  };
}

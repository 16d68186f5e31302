export { ClusterNode, type PeerStatus } from './cluster-node.js';
export { PeerLink, type PeerInfo } from './peer-link.js';
export { checkClusterOptions } from './option-checks.js';
export { resolveClusterOptions, parseAddress, type ClusterOptions, type LeafIdentity, type MeshMode, type ResolvedClusterOptions } from './options.js';
export { DedupWindow } from './dedup-window.js';
export { InterestLedger } from './interest-ledger.js';
export { issueLeafKey, leafIdentity } from './leaf-keys.js';

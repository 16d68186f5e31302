import { ConfigError, MAX_TIMER_MS, type Permissions, type TlsConfig } from '@meshbus/core';
import { LeafRules, type LeafPermissions } from './leaf-rules.js';

/** A leaf's identity from its issued key (leaf-keys.ts leafIdentity): `ClusterOptions.leafKey`. */
export interface LeafIdentity {
  /** The node id this leaf must use (MeshNode's `id`). */
  id: string;
  /** The key as issued, `mbleaf1.<label>.<hex>`. */
  key: string;
  /** The salt the id was made with, 32 hex digits. */
  salt: string;
}

/** How events travel between nodes. See cluster/README.md. */
export type MeshMode = 'full' | 'partial' | 'leaf';

export interface ClusterOptions {
  /** Interface for peer links. Default 127.0.0.1. */
  host?: string;
  /** Port for peer links; 0 picks a free one. Default 4481. */
  port?: number;
  /** Address other nodes dial to reach this one; default host:port. */
  advertise?: string;
  /** Client URL other nodes hand to clients for failover; default the node's host:port. */
  clientAdvertise?: string;
  /** Peer addresses to dial: "host:port"; a host name that resolves to several addresses dials each. */
  seeds?: string[];
  /** Shared secret for the HMAC challenge on peer links. Absent: any node may join (development only). */
  secret?: string;
  /**
   * 'full' (default): every node links to every other, learned by gossip; an event from a
   * peer goes to local clients only. 'partial': only seeds are dialed; events are forwarded
   * along links with duplicate suppression and a hop limit. 'leaf': a leaf node (an edge
   * point of presence): links to one of its seeds (hubs of a mesh) at a time, failing over
   * between them, announces only its own clients' interest and accepts no links.
   */
  mode?: MeshMode;
  /** Ping a silent peer after this many ms; two unanswered pings mark it dead. Default 2,000. */
  pingInterval?: number;
  /** Redial backoff bounds, ms. Defaults 100 and 5,000. */
  redialMin?: number;
  redialMax?: number;
  /** A link must complete its handshake within this many ms. Default 5,000. */
  handshakeTimeout?: number;
  /** Bytes queued toward one peer before events for it are dropped (counted). Default 64 MiB. */
  maxPending?: number;
  /**
   * Peer connections that have not authenticated yet, at most, at once; more are closed on
   * accept. Each is closed when its handshake does not complete within `handshakeTimeout`.
   * Default 64.
   */
  maxPreAuth?: number;
  /** The same bound per remote IP address. Default 8. */
  maxPreAuthPerIp?: number;
  /** Nodes learned by gossip or linked that this node keeps (views, failover URLs, dial targets), at most. Default 1,024. */
  maxKnownPeers?: number;
  /**
   * Weight of the interest entries (pattern, queue) one peer link may announce, at
   * most; past it further entries are refused (ERROR MB_ERR_TOO_MANY_SUBSCRIPTIONS to
   * the peer, logged) and not routed to. An entry weighs as a client's SUB of its
   * pattern and queue (SPEC 10.10: 1 up to 4 tokens, 6 for 32). A peer announces
   * each distinct (pattern, queue) of its clients once, so this bounds the routing
   * table a peer can fill. Default 100,000.
   */
  maxPeerInterest?: number;
  /**
   * Leaf links a hub takes at most; past it a leaf's link is refused (fatal ERROR
   * MB_ERR_TOO_MANY_CONNECTIONS; logged at most once a minute) and it fails over to
   * another of its seeds. Each leaf link keeps a copy of all the interest the hub
   * announces to it (~150 B per distinct pattern and queue: 20,000 are ~3 MB a
   * link). Default 64.
   */
  maxLeafLinks?: number;
  /**
   * Leaf links of one leaf key label at once (keyed leaves; cluster/README.md
   * "Leaf keys"): a key makes a fresh node id per salt, so one key holder
   * could otherwise take every one of `maxLeafLinks` and lock the others out.
   * Past it the leaf is refused MB_ERR_TOO_MANY_CONNECTIONS. Default 8
   * (several leaf processes of one site may share its key).
   */
  maxLeafLinksPerKey?: number;
  /**
   * Interest changes a second a hub applies from one leaf link (an entry added, replaced or removed),
   * past a burst of half of `maxPeerInterest` (a leaf's whole snapshot); past it the leaf's input waits
   * (interest-pacing.ts: applied late, never dropped). Default 10,000.
   */
  leafInterestRate?: number;
  /**
   * Gateway links other regions' nodes dial to this one that it keeps at
   * most (one per remote node id: a second from the same id replaces the
   * first); past it a link is refused (fatal ERROR MB_ERR_TOO_MANY_CONNECTIONS,
   * logged at most once a minute). Each keeps a copy of the interest this
   * node announces, as a leaf link does (a review: 150 links, ~1.4 MB each
   * with 10,000 subscriptions, all taken). Default 64.
   */
  maxGatewayLinks?: number;
  /**
   * A gossip-learned address is given up after this many consecutive failed attempts (no
   * connection, or a link that closed before authenticating), or at once when the node
   * there refuses our cluster secret. Seeds are never given up. Default 20.
   */
  redialGiveUp?: number;
  /**
   * How long, ms, a node with seeds waits for its first link before it reports
   * ready anyway (/readyz). A node whose seeds are only itself, or names that
   * do not resolve yet (the first pod of a StatefulSet behind a headless
   * service), would otherwise never become ready, and Kubernetes would never
   * publish the address the other pods need to reach it. Default 10,000.
   */
  readyWait?: number;
  /**
   * This node's region: 1..64 characters of A-Z, a-z, 0-9, `_` and `-`. Nodes of one
   * region form one mesh; a peer link between regions is refused (MB_ERR_TOPOLOGY), they
   * are joined by gateway links. Required with `gateways`.
   */
  region?: string;
  /**
   * Other regions to join: region name → cluster addresses of some of its nodes. This
   * node keeps one gateway link to each region (the first address that answers; the
   * others are failover) and sends over it the events that enter the mesh here and that
   * region wants. Full mesh only. See cluster/README.md, "Gateways".
   */
  gateways?: Record<string, string[]>;
  /**
   * TLS on peer links, both directions: the certificate this node presents, the CA
   * that signs its peers, and `requireClientCert` for mutual TLS (a peer without a
   * certificate from that CA cannot even start the handshake).
   */
  tls?: TlsConfig;
  /**
   * A leaf's own credential instead of `secret` (leaf-keys.ts, cluster/README.md
   * "Leaf keys"): `leafIdentity(key)` of the key `meshbus leaf-key` issued; the
   * node's id must be its `id`. Only with mode 'leaf', not with `secret`.
   */
  leafKey?: LeafIdentity;
  /** Leaf key labels this hub refuses (a leaf's key revoked). Default none. */
  deniedLeafKeys?: string[];
  /**
   * What leaves that prove a leaf key may subscribe to and publish, by key label (`'*'`: the labels without
   * their own), as a client token's `permissions` (leaf-rules.ts). Default none: such a leaf may do what a
   * client without a token may.
   */
  leafPermissions?: Record<string, LeafPermissions>;
}

export interface ResolvedClusterOptions {
  host: string;
  port: number;
  advertise: string | undefined;
  clientAdvertise: string | undefined;
  seeds: string[];
  secret: string | undefined;
  mode: MeshMode;
  pingInterval: number;
  redialMin: number;
  redialMax: number;
  handshakeTimeout: number;
  maxPending: number;
  maxPreAuth: number;
  maxPreAuthPerIp: number;
  maxKnownPeers: number;
  maxPeerInterest: number;
  maxLeafLinks: number;
  maxLeafLinksPerKey: number;
  leafInterestRate: number;
  maxGatewayLinks: number;
  redialGiveUp: number;
  readyWait: number;
  region: string | undefined;
  gateways: Record<string, string[]>;
  tls: TlsConfig | undefined;
  leafKey: LeafIdentity | undefined;
  deniedLeafKeys: string[];
  leafPermissions: ReadonlyMap<string, Permissions> | undefined;
}

export function resolveClusterOptions(o: ClusterOptions): ResolvedClusterOptions {
  const r: ResolvedClusterOptions = {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 4481,
    advertise: o.advertise,
    clientAdvertise: o.clientAdvertise,
    seeds: o.seeds ?? [],
    secret: o.secret,
    mode: o.mode ?? 'full',
    pingInterval: o.pingInterval ?? 2_000,
    redialMin: o.redialMin ?? 100,
    redialMax: o.redialMax ?? 5_000,
    handshakeTimeout: o.handshakeTimeout ?? 5_000,
    maxPending: o.maxPending ?? 64 * 1024 * 1024,
    maxPreAuth: o.maxPreAuth ?? 64,
    maxPreAuthPerIp: o.maxPreAuthPerIp ?? 8,
    maxKnownPeers: o.maxKnownPeers ?? 1024,
    maxPeerInterest: o.maxPeerInterest ?? 100_000,
    maxLeafLinks: o.maxLeafLinks ?? 64,
    maxLeafLinksPerKey: o.maxLeafLinksPerKey ?? 8,
    leafInterestRate: o.leafInterestRate ?? 10_000,
    maxGatewayLinks: o.maxGatewayLinks ?? 64,
    redialGiveUp: o.redialGiveUp ?? 20,
    readyWait: o.readyWait ?? 10_000,
    region: o.region,
    gateways: o.gateways ?? {},
    tls: o.tls,
    leafKey: o.leafKey,
    deniedLeafKeys: o.deniedLeafKeys ?? [],
    leafPermissions: LeafRules.check(o.leafPermissions),
  };
  if (!Number.isInteger(r.port) || r.port < 0 || r.port > 65535) throw new ConfigError(`cluster port must be 0..65535, got ${o.port}`);
  if (r.mode !== 'full' && r.mode !== 'partial' && r.mode !== 'leaf') throw new ConfigError(`mesh mode must be 'full', 'partial' or 'leaf', got ${String(o.mode)}`);
  if (r.mode === 'leaf' && r.seeds.length === 0) throw new ConfigError('a leaf node needs seeds: the hub nodes it links to');
  for (const s of r.seeds) parseAddress(s, 'seeds');
  for (const k of ['pingInterval', 'redialMin', 'redialMax', 'handshakeTimeout', 'maxPending', 'maxPreAuth', 'maxPreAuthPerIp', 'maxKnownPeers', 'maxPeerInterest', 'maxLeafLinks', 'maxLeafLinksPerKey', 'leafInterestRate', 'maxGatewayLinks', 'redialGiveUp'] as const) {
    if (!Number.isInteger(r[k]) || r[k] <= 0) throw new ConfigError(`${k} must be a positive integer`);
  }
  // They arm timers: past the longest one a timer fires after 1 ms (a redial or ping storm).
  for (const k of ['pingInterval', 'redialMin', 'redialMax', 'handshakeTimeout'] as const) {
    if (r[k] > MAX_TIMER_MS) throw new ConfigError(`${k} must be at most ${MAX_TIMER_MS} ms (the longest timer), got ${r[k]}`);
  }
  if (r.region !== undefined && !isRegionName(r.region)) throw new ConfigError(`region must be 1..64 characters of A-Z, a-z, 0-9, _ and -, got ${JSON.stringify(r.region)}`);
  const remote = Object.entries(r.gateways);
  if (remote.length > 0) {
    if (r.region === undefined) throw new ConfigError('gateways need this node\'s region (--region)');
    if (r.mode !== 'full') throw new ConfigError('gateways join full meshes: a partial-mesh or leaf node cannot have them');
  }
  for (const [name, addrs] of remote) {
    if (!isRegionName(name)) throw new ConfigError(`gateway region must be 1..64 characters of A-Z, a-z, 0-9, _ and -, got ${JSON.stringify(name)}`);
    if (name === r.region) throw new ConfigError(`a gateway joins another region: ${name} is this node's own`);
    if (!Array.isArray(addrs) || addrs.length === 0) throw new ConfigError(`gateway region ${name} needs at least one address`);
    for (const a of addrs) parseAddress(a, `gateways (region ${name})`);
  }
  if (!Number.isInteger(r.readyWait) || r.readyWait < 0) throw new ConfigError('readyWait must be a non-negative integer (ms)');
  if (r.secret !== undefined && r.secret.length < 8) throw new ConfigError('cluster secret must have at least 8 characters');
  if (r.leafKey !== undefined && r.mode !== 'leaf') throw new ConfigError('a leaf key is for a leaf node (mode leaf): hubs and mesh nodes prove the cluster secret');
  if (r.leafKey !== undefined && r.secret !== undefined) throw new ConfigError('a leaf proves either the cluster secret or a leaf key, not both');
  if (!Array.isArray(r.deniedLeafKeys) || !r.deniedLeafKeys.every(isRegionName)) throw new ConfigError('deniedLeafKeys must be leaf key labels (1..64 characters of A-Z, a-z, 0-9, _ and -)');
  return r;
}

/** True for a region name: 1..64 characters of A-Z, a-z, 0-9, `_` and `-`. */
export function isRegionName(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v);
}

/** Parses "host:port" (IPv6 in brackets); ConfigError when malformed, naming `what` (the option it came from) when given. */
export function parseAddress(addr: string, what?: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(`${what === undefined ? '' : `${what}: `}"${addr}" is not host:port`);
  return { host: (m[1] ?? m[2])!, port };
}

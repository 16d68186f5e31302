import { readFileSync } from 'node:fs';
import { ConfigError, ListenError, MAX_WAIT_REPLICAS } from '@meshbus/core';
import { UsageError } from './command-spec.js';
import { checkPorts } from './listen-addresses.js';

export { isWildcardHost } from './listen-addresses.js';

/**
 * The settings of `meshbus start`, from (lowest to highest precedence)
 * embedded defaults, a JSON config file, MESHBUS_* environment variables and
 * flags. Names are the flags' camelCase forms, e.g. clusterPort.
 */
export interface StartConfig {
  host: string;
  port: number;
  /** HTTP API port; 'off' disables it. */
  httpPort: number | undefined;
  httpHost: string | undefined;
  /** HTTP API connections open at once (HttpOptions.maxConnections). */
  httpMaxConnections: number | undefined;
  /** HTTP API connections open at once from one host (HttpOptions.maxConnectionsPerIp). */
  httpMaxConnectionsPerIp: number | undefined;
  /** HTTP API requests one connection may have unanswered (HttpOptions.maxPipelined). */
  httpMaxPipelined: number | undefined;
  /** HTTP API calls that may wait at once on the node: requests, traces, mesh and workers views (maxWaiting of the API plugin). */
  httpMaxWaiting: number | undefined;
  /** WebSocket gateway port (browsers, mobile); 'off' disables it. */
  wsPort: number | undefined;
  /** Origins allowed to open a WebSocket (browsers' Origin header); empty: any. */
  wsOrigins: string[];
  /** permessage-deflate on the WebSocket gateway: 'off' (default) or 'on'. */
  wsDeflate: 'off' | 'on';
  clusterPort: number | undefined;
  clusterHost: string;
  advertise: string | undefined;
  /** Client address other nodes give their TCP clients for this node (WELCOME peers, GOODBYE reconnect). */
  clientAdvertise: string | undefined;
  /** WebSocket URL other nodes give their WebSocket clients for this node. */
  wsAdvertise: string | undefined;
  seeds: string[];
  clusterSecret: string | undefined;
  /** A leaf's own key (`meshbus leaf-key`); as a hub, revoked labels and a JSON file of keyed leaves' rules. */
  leafKey: string | undefined;
  denyLeafKeys: string[];
  leafPermissions: string | undefined;
  mesh: 'full' | 'partial' | 'leaf';
  /** ms a node with seeds waits for a first link before /readyz says ready anyway. */
  readyWait: number | undefined;
  /** Leaf nodes this node takes links from at once, as a hub, in all and per leaf key label (cluster maxLeafLinks, maxLeafLinksPerKey). */
  maxLeafLinks: number | undefined;
  maxLeafLinksPerKey: number | undefined;
  /** Gateway links other regions' nodes dial to this one, kept at once (cluster maxGatewayLinks). */
  maxGatewayLinks: number | undefined;
  /** This node's region (nodes of one region form one mesh; regions are joined by gateways). */
  region: string | undefined;
  /** Gateways to other regions, each `region=host:port|host:port`. */
  gateways: string[];
  name: string;
  token: string | undefined;
  adminToken: string | undefined;
  /** 'on': start the HTTP API without --admin-token where it is otherwise refused (non-loopback --http-host, or client tokens required). */
  httpInsecureOpen: 'on' | 'off';
  maxPayload: number | undefined;
  inputBudget: number | undefined;
  inputStall: number | undefined;
  outboundBudget: number | undefined;
  maxConnections: number | undefined;
  maxSubscriptions: number | undefined;
  maxNodeSubscriptions: number | undefined;
  maxSubscriptionsPerIp: number | undefined;
  pingInterval: number | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  /** OTLP/HTTP (JSON) endpoint receiving a span per hop of events that carry a W3C traceparent. */
  otlpEndpoint: string | undefined;
  workers: number;
  /** HS256 secret for client JWTs. */
  jwtSecret: string | undefined;
  /** File with the Ed25519 public key (PEM) for EdDSA client JWTs. */
  jwtPublicKey: string | undefined;
  /** JWKS URL whose keys verify client JWTs (rotation: refetched on unknown kid). */
  jwksUrl: string | undefined;
  /** JWKS file whose keys verify client JWTs (reread when it changes). */
  jwksFile: string | undefined;
  /** Seconds a fetched JWKS is cached. */
  jwksCacheMaxAge: number | undefined;
  /** Accepted `aud` values of client JWTs; empty: not checked. */
  jwtAudience: string[];
  /** Accepted `iss` values of client JWTs; empty: not checked. */
  jwtIssuer: string[];
  /** Longest validity (exp - iat, exp - now) a client JWT may claim, seconds. */
  jwtMaxTtl: number | undefined;
  /** Longest a client JWT is trusted, seconds (NodeOptions.maxTokenLifetime). */
  maxTokenLifetime: number | undefined;
  maxConnectionsPerIp: number | undefined;
  publishRate: number | undefined;
  /** PEM files: with cert and key, clients (tcp, ws, http) are served over TLS. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** CA bundle that signs client certificates (with tlsClientAuth) and peers' (with clusterTls). */
  tlsCa: string | undefined;
  /** 'on': clients must present a certificate signed by tlsCa. */
  tlsClientAuth: 'on' | 'off';
  /** 'on': peer links use TLS with the same certificate, mutual with tlsCa. */
  clusterTls: 'on' | 'off';
  /**
   * Where Redis is: turns durability on (history, recovery, latest values, durable queues, delayed publish).
   * `redis://host:port[/db]`, `redis-cluster://h1:p1,h2:p2,…` (cluster seeds) or
   * `redis-sentinel://h1:p1,h2:p2,…/<master name>` (sentinels); credentials as `user:pass@` before the hosts.
   */
  redis: string | undefined;
  /** Key prefix in Redis. Default meshbus:. */
  redisPrefix: string | undefined;
  /** Replicas that must confirm a durable write (Redis WAIT) before the publisher's ACK. Default 0. */
  redisWaitReplicas: number | undefined;
  /**
   * Durable topic patterns, each `pattern[|history=N][|age=MS][|latest][|topics=N]`,
   * e.g. `orders.>|history=10000|age=86400000`, `prices.>|latest`.
   */
  durable: string[];
  /** Store quotas (durable.quota): largest durable/delayed payload, delayed publishes waiting in the mesh (events, bytes). */
  durableMaxEventBytes: number | undefined;
  durableDelayedEvents: number | undefined;
  durableDelayedBytes: number | undefined;
  /** Jobs waiting in one durable work queue, mesh-wide (durable.queues.maxJobs). */
  durableQueueMaxJobs: number | undefined;
  /** How long a durable work queue with no member anywhere is kept, ms; 0: for ever (durable.queues.inactiveMs). */
  durableQueueInactive: number | undefined;
  /** Durable work queues one host's clients may make among those a node knows (durable.queues.maxPerHost). */
  durableQueueMaxPerHost: number | undefined;
}

type Kind = 'string' | 'int' | 'list' | 'port';

/** One setting of `meshbus start`: how its value is read, its default, and its help sentence. */
interface StartSetting<K extends keyof StartConfig> {
  kind: Kind;
  default: StartConfig[K];
  /** Largest value accepted (kind 'int'); none: any whole number of at least 0. */
  max?: number;
  /** Placeholder of the value in help. */
  arg: string;
  help: string;
}

/**
 * Every setting of `meshbus start`, in help order: the one table that drives
 * the flags, the MESHBUS_* variables, the config file keys, the defaults and
 * `meshbus start --help`.
 */
export const START_SETTINGS: { [K in keyof StartConfig]: StartSetting<K> } = {
  host: { kind: 'string', default: '127.0.0.1', arg: 'addr', help: 'Address the client port (and, unless --http-host, the HTTP API) listens on; 0.0.0.0 for every interface.' },
  port: { kind: 'port', default: 4480, arg: 'port', help: 'TCP port for clients (0: any free port).' },
  httpPort: { kind: 'port', default: 8480, arg: 'port|off', help: 'Port of the HTTP API and dashboard; off disables it.' },
  httpHost: { kind: 'string', default: undefined, arg: 'addr', help: 'Address the HTTP API listens on, if not --host.' },
  httpMaxConnections: { kind: 'int', default: undefined, arg: 'n', help: 'Most HTTP API connections open at once (default 1024).' },
  httpMaxConnectionsPerIp: { kind: 'int', default: undefined, arg: 'n', help: 'Most HTTP API connections open at once from one host, an IPv4 address or an IPv6 /64 (default 64; behind a reverse proxy every caller is the proxy).' },
  httpMaxWaiting: { kind: 'int', default: undefined, arg: 'n', help: 'Most HTTP API calls that wait on the node at once (POST /v1/request, /v1/trace, GET /v1/mesh, /v1/workers; default 1024); past it a call is refused 503 and counted.' },
  httpMaxPipelined: { kind: 'int', default: undefined, arg: 'n', help: 'Most HTTP API requests one connection may have sent whose answers are not written out yet; past it the connection is closed (default 8).' },
  wsPort: { kind: 'port', default: 8481, arg: 'port|off', help: 'Port of the WebSocket gateway (browsers, mobile); off disables it.' },
  wsOrigins: { kind: 'list', default: [], arg: 'origins', help: 'Comma-separated Origin values allowed to open a WebSocket, * for any; empty: any when clients need a token (--token, --jwt-*), else pages from this machine only (localhost, 127.x, [::1]).' },
  wsDeflate: { kind: 'string', default: 'off', arg: 'on|off', help: 'Compress WebSocket messages (permessage-deflate).' },
  clusterPort: { kind: 'port', default: undefined, arg: 'port', help: 'Port for peer links to other nodes; unset: no cluster (4481 when --seeds is given).' },
  clusterHost: { kind: 'string', default: '127.0.0.1', arg: 'addr', help: 'Address the cluster port listens on.' },
  advertise: { kind: 'string', default: undefined, arg: 'host:port', help: 'Cluster address other nodes are told to dial (behind NAT or a proxy); with --host 0.0.0.0 its host also names this node to other nodes\' clients (see --client-advertise).' },
  clientAdvertise: { kind: 'string', default: undefined, arg: 'host:port', help: 'Address other nodes give their TCP clients to fail over to this one (behind NAT, a load balancer or a proxy); default --host and --port (with --host 0.0.0.0: the --advertise host, else the address peers reach this node at).' },
  wsAdvertise: { kind: 'string', default: undefined, arg: 'url', help: 'ws:// or wss:// URL other nodes give their WebSocket clients (browsers) to fail over to this one, e.g. wss://mesh.example.com/ behind a TLS proxy; default the gateway\'s own address, chosen as for --client-advertise.' },
  seeds: { kind: 'list', default: [], arg: 'host:port,...', help: 'Cluster addresses of nodes to join at start.' },
  clusterSecret: { kind: 'string', default: undefined, arg: 'secret', help: 'Shared secret every peer must prove, at least 8 characters (checked before any port opens); without it any node that reaches the cluster port may join.' },
  leafKey: { kind: 'string', default: undefined, arg: 'key', help: 'With --mesh leaf, instead of --cluster-secret: this leaf\'s own key, as `meshbus leaf-key <label>` printed it under the hubs\' cluster secret; the leaf\'s node id is made from it, so the leaf can speak only as itself and cannot join the mesh as a full node.' },
  leafPermissions: { kind: 'string', default: undefined, arg: 'file.json', help: 'As a hub: what leaves with a leaf key may subscribe to and publish, a JSON object of key label (or * for the others) to { "publish": { "allow": [...], "deny": [...] }, "subscribe": {...} }, as a client token\'s permissions.' },
  denyLeafKeys: { kind: 'list', default: [], arg: 'label,...', help: 'Leaf key labels this node refuses as a hub (revoked keys: a leaf\'s machine lost or retired).' },
  mesh: { kind: 'string', default: 'full', arg: 'full|partial|leaf', help: 'full: link to every node heard of; partial: link to the seeds only and forward interest; leaf: an edge node linked to one of --seeds (hubs of a full mesh) at a time, sending up only its own clients\' interest.' },
  region: { kind: 'string', default: undefined, arg: 'name', help: 'This node\'s region (A-Z, a-z, 0-9, _ and -): the nodes of one region form one mesh, and a peer link between regions is refused; join regions with --gateways.' },
  gateways: { kind: 'list', default: [], arg: 'region=host:port|host:port,...', help: 'Other regions to join: for each, cluster addresses of some of its nodes; this node keeps one gateway link per region (the first that answers, the others for failover). Needs --region.' },
  maxGatewayLinks: { kind: 'int', default: undefined, arg: 'n', help: 'Most gateway links other regions\' nodes dial to this one at once (default 64; one per remote node, each holds a copy of this node\'s interest); past it a link is refused MB_ERR_TOO_MANY_CONNECTIONS.' },
  maxLeafLinks: { kind: 'int', default: undefined, arg: 'n', help: 'Most leaf nodes linked to this node at once, as a hub (default 64; each holds a copy of the interest the hub sends it); past it a leaf is refused MB_ERR_TOO_MANY_CONNECTIONS and tries another seed.' },
  maxLeafLinksPerKey: { kind: 'int', default: undefined, arg: 'n', help: 'Most leaf links of one leaf key label at once, as a hub (default 8: a key makes a fresh node id at each start, so one key could otherwise take every leaf link); past it MB_ERR_TOO_MANY_CONNECTIONS.' },
  readyWait: { kind: 'int', default: undefined, arg: 'ms', help: 'With --seeds: how long to wait for a first peer link before /readyz reports ready anyway (seeds that are only this node, or names that do not resolve yet); default 10000.' },
  name: { kind: 'string', default: '', arg: 'name', help: 'Human-readable node name shown in views, logs and traces.' },
  token: { kind: 'string', default: undefined, arg: 'token', help: 'Token every client must present.' },
  adminToken: { kind: 'string', default: undefined, arg: 'token', help: 'Bearer token of the HTTP API\'s admin routes.' },
  httpInsecureOpen: { kind: 'string', default: 'off', arg: 'on|off', help: 'on: start the HTTP API without --admin-token where that is otherwise refused (non-loopback --http-host, or client tokens required).' },
  maxPayload: { kind: 'int', default: undefined, arg: 'bytes', help: 'Largest event payload accepted from a client, bytes.' },
  inputBudget: { kind: 'int', default: undefined, arg: 'bytes', help: 'Bytes of unfinished frames, WebSocket messages and HTTP bodies the node holds, every connection together; past it inputs wait (default 64 MiB, at least 4 of the largest frames; at least 2).' },
  inputStall: { kind: 'int', default: undefined, arg: 'ms', help: 'While inputs wait for --input-budget: a holder silent this long is closed (MB_ERR_INPUT_BUDGET), a waiter after twice this (default 5000).' },
  outboundBudget: { kind: 'int', default: undefined, arg: 'bytes', help: 'Bytes all outbound queues (client connections and peer links) hold together; past it the connections holding the most are slow consumers by their policy (default 256 MiB).' },
  maxConnections: { kind: 'int', default: undefined, arg: 'n', help: 'Most client connections at once.' },
  maxSubscriptions: { kind: 'int', default: undefined, arg: 'n', help: 'Most subscriptions per client connection.' },
  maxNodeSubscriptions: { kind: 'int', default: undefined, arg: 'n', help: 'Most client subscriptions on the node, all connections together (default 1,000,000).' },
  maxSubscriptionsPerIp: { kind: 'int', default: undefined, arg: 'n', help: 'Most client subscriptions from one host (an IPv4 address or an IPv6 /64), all its connections together (default a quarter of --max-node-subscriptions).' },
  pingInterval: { kind: 'int', default: undefined, arg: 'ms', help: 'How often idle clients are pinged, milliseconds.' },
  logLevel: { kind: 'string', default: 'info', arg: 'level', help: 'JSON log lines on stderr at this level and above: debug, info, warn, error or silent.' },
  otlpEndpoint: { kind: 'string', default: undefined, arg: 'url', help: 'OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318) that receives one OpenTelemetry span per hop of every event carrying a W3C traceparent header, named like meshbus trace names hops.' },
  workers: { kind: 'int', default: 1, arg: 'n', help: 'Run one node per worker process on the same client port, linked over loopback.' },
  redis: {
    kind: 'string',
    default: undefined,
    arg: 'url',
    help: 'Redis: turns durability on (history, recovery, latest values, durable queues, delayed publish). redis://host:port[/db], redis-cluster://h1:p1,h2:p2 (cluster seeds) or redis-sentinel://h1:p1,h2:p2/<master name> (sentinels); user:pass@ before the hosts.',
  },
  redisPrefix: { kind: 'string', default: undefined, arg: 'prefix', help: 'Key prefix in Redis (default meshbus:).' },
  redisWaitReplicas: {
    kind: 'int',
    default: undefined,
    max: MAX_WAIT_REPLICAS,
    arg: 'n',
    help: `Durable writes are ACKed only once n replicas confirm them (Redis WAIT, 1 s at most, else NACK), n from 0 to ${MAX_WAIT_REPLICAS}; default 0: ACKed once the primary has them, which a failover can lose.`,
  },
  durable: {
    kind: 'list',
    default: [],
    arg: 'rules',
    help: 'Comma-separated durable topic rules, each pattern[|history=N][|age=MS][|latest][|topics=N]; topics: distinct topics the rule may hold in Redis, mesh-wide (default 10000; past it a new topic is refused with MB_ERR_STORE_FULL).',
  },
  durableMaxEventBytes: { kind: 'int', default: undefined, arg: 'bytes', help: 'Largest payload of a durable or delayed publish (default 1048576); larger ones are refused with MB_ERR_STORE_FULL.' },
  durableDelayedEvents: { kind: 'int', default: undefined, arg: 'n', help: 'Delayed publishes waiting in the whole mesh, counted in Redis (default 10000); past it MB_ERR_STORE_FULL.' },
  durableDelayedBytes: { kind: 'int', default: undefined, arg: 'bytes', help: 'Bytes of the delayed publishes waiting in the whole mesh (default 67108864); past it MB_ERR_STORE_FULL.' },
  durableQueueMaxJobs: { kind: 'int', default: undefined, arg: 'n', help: 'Jobs not yet done in one durable work queue, mesh-wide (default 100000); past it a publish that would add a job is refused with MB_ERR_STORE_FULL.' },
  durableQueueInactive: { kind: 'int', default: undefined, arg: 'ms', help: 'A durable work queue with no member anywhere in the mesh for this long is forgotten: no more jobs are added to it, its jobs wait for a member that subscribes again (default 86400000, 24 h; 0 keeps every queue; at least 1000).' },
  durableQueueMaxPerHost: { kind: 'int', default: undefined, arg: 'n', help: 'Durable work queues the clients of one host may make among those the node knows (default 256); past it a new queue from that host is refused with MB_ERR_TOO_MANY_SUBSCRIPTIONS.' },
  jwtSecret: { kind: 'string', default: undefined, arg: 'secret', help: 'HS256 secret that signs client JWTs.' },
  jwtPublicKey: { kind: 'string', default: undefined, arg: 'file.pem', help: 'Ed25519 public key (PEM file) that verifies EdDSA client JWTs.' },
  jwksUrl: { kind: 'string', default: undefined, arg: 'url', help: 'JWKS URL whose keys verify client JWTs by kid; fetched again for an unknown kid, so rotated keys are picked up.' },
  jwksFile: { kind: 'string', default: undefined, arg: 'file.json', help: 'JWKS file whose keys verify client JWTs by kid; read again whenever it changes.' },
  jwksCacheMaxAge: { kind: 'int', default: undefined, arg: 's', help: 'Seconds a fetched --jwks-url set is trusted before it is fetched again, so removed keys stop working (default 600).' },
  jwtAudience: { kind: 'list', default: [], arg: 'aud,...', help: 'Client JWTs must name one of these in aud; empty: aud is not checked.' },
  jwtIssuer: { kind: 'list', default: [], arg: 'iss,...', help: 'Client JWTs must have one of these as iss; empty: iss is not checked.' },
  jwtMaxTtl: { kind: 'int', default: undefined, arg: 's', help: 'Refuse client JWTs that need no exp or claim to be valid longer than this many seconds (exp - iat, exp - now).' },
  maxTokenLifetime: { kind: 'int', default: undefined, arg: 's', help: 'Seconds a client connection may go on without a fresh token: it ends that long after its HELLO or latest AUTH (sooner at iat + this, or at exp); tokens need exp or iat. A token without iat may be sent again, restarting the period, until its exp.' },
  maxConnectionsPerIp: { kind: 'int', default: undefined, arg: 'n', help: 'Most client connections from one host (an IPv4 address or an IPv6 /64).' },
  publishRate: { kind: 'int', default: undefined, arg: 'n', help: 'Most events per second one client may publish; 0 (the default) turns the publish rate limit off.' },
  tlsCert: { kind: 'string', default: undefined, arg: 'file.pem', help: 'Certificate (PEM): with --tls-key, clients (TCP, WebSocket, HTTP) are served over TLS.' },
  tlsKey: { kind: 'string', default: undefined, arg: 'file.pem', help: 'Private key (PEM) of --tls-cert.' },
  tlsCa: { kind: 'string', default: undefined, arg: 'file.pem', help: 'CA bundle that signs client certificates (--tls-client-auth) and peers\' (--cluster-tls).' },
  tlsClientAuth: { kind: 'string', default: 'off', arg: 'on|off', help: 'on: clients must present a certificate signed by --tls-ca.' },
  clusterTls: { kind: 'string', default: 'off', arg: 'on|off', help: 'on: peer links use TLS with --tls-cert, mutual with --tls-ca.' },
};

export const START_DEFAULTS = Object.fromEntries(Object.entries(START_SETTINGS).map(([k, v]) => [k, v.default])) as unknown as StartConfig;

export const START_KEYS = Object.keys(START_SETTINGS) as Array<keyof StartConfig>;

/** "clusterPort" → "cluster-port". */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

function envName(key: string): string {
  return 'MESHBUS_' + flagName(key).replace(/-/g, '_').toUpperCase();
}

function coerce(key: keyof StartConfig, raw: unknown, where: string): unknown {
  const { kind, max } = START_SETTINGS[key] as StartSetting<keyof StartConfig>;
  // A flag or variable names the setting itself; a config file also needs the key.
  const what = where.startsWith('--') || where.startsWith('MESHBUS_') ? where : `${where}: ${key}`;
  if ((key === 'wsPort' || key === 'httpPort') && raw === 'off') return undefined;
  if (kind === 'list') {
    if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw;
    if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
    throw new ConfigError(`${what} must be a comma-separated list`);
  }
  if (kind === 'string') {
    if (typeof raw !== 'string') throw new ConfigError(`${what} must be a string`);
    return raw;
  }
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${what} must be a whole number of at least 0, got ${JSON.stringify(raw)}`);
  if (kind === 'port' && n > 65535) throw new ConfigError(`${what} must be a port (0..65535), got ${n}`);
  // Past its maximum: said here, before any port opens, naming the setting (a huge --redis-wait-replicas was taken).
  if (max !== undefined && n > max) throw new ConfigError(`${what} must be a whole number from 0 to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/** `region=host:port|host:port` entries (--gateways) → region → addresses. */
export function parseGateways(specs: string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const spec of specs) {
    const m = /^([^=\s]+)=(.+)$/.exec(spec.trim());
    if (!m) throw new ConfigError(`--gateways: "${spec}" is not region=host:port|host:port`);
    const addrs = m[2]!.split('|').map((a) => a.trim()).filter(Boolean);
    if (addrs.length === 0) throw new ConfigError(`--gateways: region ${m[1]} has no address`);
    (out[m[1]!] ??= []).push(...addrs);
  }
  return out;
}

/** `pattern[|history=N][|age=MS][|latest][|topics=N]` → a durable topic rule. */
export function parseDurableTopic(spec: string): { pattern: string; history?: { size?: number; maxAgeMs?: number }; latest?: boolean; maxTopics?: number } {
  const [pattern, ...opts] = spec.split('|').map((x) => x.trim());
  if (!pattern) throw new ConfigError(`--durable: empty pattern in "${spec}"`);
  const t: { pattern: string; history?: { size?: number; maxAgeMs?: number }; latest?: boolean; maxTopics?: number } = { pattern };
  for (const o of opts) {
    const m = /^(history|age|topics)=(\d+)$/.exec(o);
    if (m?.[1] === 'topics') t.maxTopics = Number(m[2]);
    else if (m) {
      t.history ??= {};
      if (m[1] === 'history') t.history.size = Number(m[2]);
      else t.history.maxAgeMs = Number(m[2]);
    } else if (o === 'latest') t.latest = true;
    else throw new ConfigError(`--durable: unknown option "${o}" in "${spec}" (history=N, age=MS, latest, topics=N)`);
  }
  return t;
}

/** A region name, as the cluster layer checks it (@meshbus/cluster isRegionName). */
const REGION_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Shortest --cluster-secret accepted (the cluster layer's own minimum, @meshbus/cluster options). */
export const MIN_CLUSTER_SECRET = 8;

/**
 * MESHBUS_* variables read by something else than `meshbus start`'s settings:
 * the client commands, the native addon, the launcher, the tests and benches.
 */
const OTHER_VARIABLES = /^MESHBUS_(CONFIG|SERVER|HTTP|NATIVE|WORKER_PLAN|PORT_RANGE|LONG|FC_[A-Z_]+|TEST_[A-Z_]+|REQUIRE_[A-Z_]+|CHROMIUM|PROMTOOL|BENCH_[A-Z_]+|BIN)$/;

/** Levenshtein distance of two short strings. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The MESHBUS_* variables set in `env` that no setting of `meshbus start`
 * reads (a misspelt MESHBUS_CLUSTER_SECRETS, MESHBUS_ADVERTIZE), each with
 * the nearest setting's variable when one is close. A flag or a config file
 * key that does not exist is refused (exit 2); a variable cannot be, as the
 * environment is shared with other programs, so `start` warns about it:
 * before, it was ignored without a word and the node ran on the default.
 */
export function unknownStartVariables(env: NodeJS.ProcessEnv = process.env): Array<{ variable: string; didYouMean?: string }> {
  const known = START_KEYS.map(envName);
  const out: Array<{ variable: string; didYouMean?: string }> = [];
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith('MESHBUS_') || known.includes(name) || OTHER_VARIABLES.test(name)) continue;
    let best: string | undefined;
    let bestD = Infinity;
    for (const k of known) {
      const d = distance(name, k);
      if (d < bestD) [best, bestD] = [k, d];
    }
    out.push(bestD <= 3 ? { variable: name, didYouMean: best } : { variable: name });
  }
  return out;
}

export function loadStartConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): StartConfig {
  const cfg: Record<string, unknown> = { ...START_DEFAULTS };
  const file = (flags.config as string | undefined) ?? env.MESHBUS_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${file} must hold a JSON object`);
    for (const [k, v] of Object.entries(parsed)) {
      if (!(k in START_SETTINGS)) throw new ConfigError(`config file ${file}: unknown setting "${k}" (known: ${START_KEYS.join(', ')})`);
      cfg[k] = coerce(k as keyof StartConfig, v, file);
    }
  }
  for (const k of START_KEYS) {
    const v = env[envName(k)];
    if (v !== undefined && v !== '') cfg[k] = coerce(k, v, envName(k));
  }
  for (const k of START_KEYS) {
    const v = flags[flagName(k)];
    if (v !== undefined) cfg[k] = coerce(k, v, `--${flagName(k)}`);
  }
  const c = cfg as unknown as StartConfig;
  if (c.mesh !== 'full' && c.mesh !== 'partial' && c.mesh !== 'leaf') throw new ConfigError(`--mesh must be 'full', 'partial' or 'leaf', got ${c.mesh}`);
  if (c.mesh === 'leaf' && c.seeds.length === 0) throw new ConfigError('--mesh leaf needs --seeds: the hub nodes it links to');
  if (c.leafKey !== undefined && c.mesh !== 'leaf') throw new ConfigError('--leaf-key is for a leaf node (--mesh leaf): hubs and mesh nodes prove --cluster-secret');
  if (c.leafKey !== undefined && c.clusterSecret !== undefined) throw new ConfigError('a leaf proves either --cluster-secret or --leaf-key, not both');
  for (const label of c.denyLeafKeys) if (!REGION_NAME.test(label)) throw new ConfigError(`--deny-leaf-keys: ${JSON.stringify(label)} is not a leaf key label (1..64 characters of A-Z, a-z, 0-9, _ and -)`);
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(c.logLevel)) throw new ConfigError(`--log-level must be debug, info, warn, error or silent`);
  // A leaf accepts no links: its cluster port only names it, so any free port will do.
  if (c.seeds.length > 0 && c.clusterPort === undefined) c.clusterPort = c.mesh === 'leaf' ? 0 : 4481;
  // Other regions' nodes dial this one's cluster port for their gateway links.
  if (c.gateways.length > 0 && c.clusterPort === undefined) c.clusterPort = 4481;
  // The cluster layer's rules (options.ts), said before any port opens, exit 2 (the cluster is loaded only later, if at all).
  if (c.region !== undefined && !REGION_NAME.test(c.region)) throw new ConfigError(`--region must be 1..64 characters of A-Z, a-z, 0-9, _ and -, got ${JSON.stringify(c.region)}`);
  if (c.gateways.length > 0 && c.region === undefined) throw new ConfigError('--gateways needs --region');
  for (const name of Object.keys(parseGateways(c.gateways))) {
    if (c.mesh !== 'full') throw new ConfigError(`--gateways join full meshes: a --mesh ${c.mesh} node cannot have them`);
    if (!REGION_NAME.test(name)) throw new ConfigError(`--gateways: region must be 1..64 characters of A-Z, a-z, 0-9, _ and -, got ${JSON.stringify(name)}`);
    if (name === c.region) throw new ConfigError(`--gateways: ${name} is this node's own region (--region): gateways join other regions`);
  }
  if (c.wsDeflate !== 'off' && c.wsDeflate !== 'on') throw new ConfigError(`--ws-deflate must be 'on' or 'off', got ${c.wsDeflate}`);
  if (c.httpInsecureOpen !== 'off' && c.httpInsecureOpen !== 'on') throw new ConfigError(`--http-insecure-open must be 'on' or 'off', got ${c.httpInsecureOpen}`);
  if (c.workers < 1) throw new ConfigError('--workers must be at least 1');
  checkPorts(c);
  // The cluster layer refuses it too, but only once the client port is open: say it before anything listens.
  if (c.clusterSecret !== undefined && c.clusterSecret.length < MIN_CLUSTER_SECRET) {
    throw new ConfigError(`--cluster-secret (MESHBUS_CLUSTER_SECRET, clusterSecret) must have at least ${MIN_CLUSTER_SECRET} characters, got ${c.clusterSecret.length}`);
  }
  for (const k of ['tlsClientAuth', 'clusterTls'] as const) if (c[k] !== 'on' && c[k] !== 'off') throw new ConfigError(`--${flagName(k)} must be on or off`);
  if (c.jwksUrl !== undefined && c.jwksFile !== undefined) throw new ConfigError('--jwks-url and --jwks-file cannot both be set');
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  if ((c.tlsClientAuth === 'on' || c.clusterTls === 'on') && (c.tlsCert === undefined || c.tlsCa === undefined)) {
    throw new ConfigError('--tls-client-auth and --cluster-tls need --tls-cert, --tls-key and --tls-ca');
  }
  return c;
}

/**
 * A start-up ConfigError as the usage error it is (exit 2: systemd's
 * RestartPreventExitStatus, as restarting cannot fix a bad value), said in
 * the operator's terms. The node, cluster, HTTP
 * API and gateway name their options (maxNodeSubscriptions); the operator set
 * --max-node-subscriptions, MESHBUS_MAX_NODE_SUBSCRIPTIONS or the config
 * file's key, so each setting named is replaced by where its value came from
 * (the file's key is the setting's own name). Only camelCase names are
 * replaced: "port" or "token" are also plain words of messages. A name already
 * followed by its flag ("adminToken / --admin-token") is left. A ListenError
 * (port in use: the machine's state, a restart may find it free, exit 1) stays
 * one, the settings that chose the port added; anything else passes unchanged.
 */
export function inOperatorTerms(e: unknown, flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): unknown {
  // Which settings chose the port (core listen.ts names the listener): "port 4480 on 127.0.0.1 is
  // already in use" named none, and four ports have a setting each.
  if (e instanceof ListenError) {
    const detail = e.message.replace(/^invalid configuration: /, '');
    return new ListenError(`${detail} (${LISTENER_SETTINGS.find(([re]) => re.test(detail))?.[1] ?? '--port, --host'})`);
  }
  if (!(e instanceof ConfigError)) return e;
  let msg = e.message.replace(/^invalid configuration: /, '');
  const sourceOf = (k: keyof StartConfig): string | undefined => (flags[flagName(k)] !== undefined ? `--${flagName(k)}` : env[envName(k)] ? envName(k) : undefined);
  // Durable and HTTP options are nested (durable.quota.maxEventBytes) and named unlike their settings: each path its setting.
  for (const [path, k] of NESTED_PATHS) {
    if (!msg.includes(path)) continue;
    msg = msg.replace(new RegExp(`(?<![\\w.-])${path.replace(/\./g, '\\.')}(?![\\w.])`, 'g'), sourceOf(k) ?? k);
    // A --durable rule's own options, as its syntax spells them (parseDurableTopic).
    if (k === 'durable') msg = msg.replace('history.size and history.maxAgeMs', 'history=N and age=MS').replace(/\bmaxTopics\b/, 'topics=N');
  }
  for (const k of START_KEYS) {
    if (!/[A-Z]/.test(k)) continue;
    const source = sourceOf(k);
    // Not after a dot: a nested path NESTED_PATHS lacks (jwt.jwksCooldown) stays whole, where its
    // last part alone was replaced ("jwt.--jwks-url must be…" before jwt.* were listed there).
    if (source !== undefined) msg = msg.replace(new RegExp(`(?<![\\w.-])${k}\\b(?! / --)`, 'g'), source);
  }
  return new UsageError(msg);
}

/** A listener's port error (core listen.ts: "<kind> port P on H ..." or "cannot listen for <label> on ...") → the settings that chose it. */
const LISTENER_SETTINGS: ReadonlyArray<readonly [RegExp, string]> = [
  [/^ws port|^cannot listen for WebSocket/, '--ws-port, on --host'],
  [/^http port|^cannot listen for HTTP/, '--http-port, --http-host'],
  [/^cluster port|^cannot listen for peers/, '--cluster-port, --cluster-host'],
];

/**
 * The nested options (core's DurableOptions and HttpOptions, named by path
 * in their ConfigErrors) that a `meshbus start` setting sets. The others
 * (e.g. durable.queues.ackTimeoutMs) have no flag: only a program embedding
 * the node sets them, and reads their own names.
 */
const NESTED_PATHS: ReadonlyArray<readonly [string, keyof StartConfig]> = [
  // The cluster's options, as its ConfigErrors name them.
  ['seeds', 'seeds'],
  ['gateways', 'gateways'],
  ['advertised cluster address', 'advertise'],
  ['advertised client address', 'clientAdvertise'],
  ['advertised WebSocket URL', 'wsAdvertise'],
  // The node's name, as the cluster's check of it says it (a plain word, which the camelCase pass leaves).
  ['node name', 'name'],
  // Client token keys (core JwtKeys): their errors say jwt.<key>, a key named unlike its setting.
  ['jwt.hs256Secret', 'jwtSecret'],
  ['jwt.ed25519PublicKey', 'jwtPublicKey'],
  ['jwt.jwksUrl', 'jwksUrl'],
  ['jwt.jwksFile', 'jwksFile'],
  ['jwt.jwksCacheMaxAge', 'jwksCacheMaxAge'],
  ['jwt.maxTtl', 'jwtMaxTtl'],
  ['jwt.audience', 'jwtAudience'],
  ['jwt.issuer', 'jwtIssuer'],
  ['http.port', 'httpPort'],
  ['http.maxConnections', 'httpMaxConnections'],
  ['http.maxConnectionsPerIp', 'httpMaxConnectionsPerIp'],
  ['http.maxPipelined', 'httpMaxPipelined'],
  // The API plugin names its own option.
  ['maxWaiting', 'httpMaxWaiting'],
  ['durable.redis', 'redis'],
  ['durable.prefix', 'redisPrefix'],
  ['durable.waitReplicas', 'redisWaitReplicas'],
  ['durable.topics', 'durable'],
  ['durable.quota.maxEventBytes', 'durableMaxEventBytes'],
  ['durable.quota.delayedEvents', 'durableDelayedEvents'],
  ['durable.quota.delayedBytes', 'durableDelayedBytes'],
  ['durable.queues.maxJobs', 'durableQueueMaxJobs'],
  ['durable.queues.inactiveMs', 'durableQueueInactive'],
  ['durable.queues.maxPerHost', 'durableQueueMaxPerHost'],
];

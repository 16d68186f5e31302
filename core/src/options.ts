import { DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_TOPIC, DEFAULT_MAX_TOPIC_DEPTH, HEADER_SIZE, MAX_EXT } from '@meshbus/proto';
import { ConfigError, MAX_TIMER_MS } from './config-error.js';
import type { Logger } from './logger.js';
import type { DurableOptions } from './durable/store-config.js';
import { jwtKeysProblem, type JwtKeys } from './auth/jwt.js';
import type { TlsConfig } from './tls-config.js';
import type { AuthThrottleOptions } from './auth/auth-throttle.js';
import { defaultInputBudget } from './input-budget.js';

/** Everything a node can be told. Every field has an embedded default. */
export interface NodeOptions {
  /** Interface for client TCP connections. Default 127.0.0.1... see README: 0.0.0.0 from the CLI. */
  host?: string;
  /** TCP port for clients; 0 picks a free one. Default 4480. */
  port?: number;
  /** Node id, 16 hex digits; random when absent. */
  id?: string;
  /** Human name shown in views and logs. */
  name?: string;
  /**
   * Client ids are this node's id followed by 16 random hex digits (32 hex digits), so a
   * client's inbox `_INBOX.<client id>` names its node: a leaf with a leaf key needs it, its
   * hub lets it subscribe only to inboxes of its own (cluster/README "Leaf nodes"). Default false.
   */
  nodeIdInClientIds?: boolean;
  /** Static bearer token clients must present in HELLO; absent: no auth. */
  token?: string;
  /**
   * Signed client tokens (JWT, verified with jose: HS256 secret, Ed25519
   * public key, JWKS URL or file, with `aud`/`iss` checks and a maximum
   * validity) carrying the subject, expiry and per-topic publish/subscribe
   * permissions. Takes precedence over `token`.
   */
  jwt?: JwtKeys;
  /**
   * OTLP/HTTP endpoint (JSON encoding) to export a span per hop of events
   * carrying a W3C `traceparent` header (otlp-export.ts); a URL without a
   * path gets `/v1/traces`. Absent: no export, no header is looked at.
   */
  otlpEndpoint?: string;
  /** Serve clients over TLS (the SDK's tls:// URLs); `requireClientCert` for mutual TLS. */
  tls?: TlsConfig;
  /**
   * Longest a client token is trusted, seconds; 0: no limit (a token without
   * `exp` is valid for ever). When set, a token needs `exp` or `iat`, and a
   * session ends (MB_ERR_TOKEN_EXPIRED) at the earliest of `exp`,
   * `iat` + maxTokenLifetime and connect/AUTH time + maxTokenLifetime. Default 0.
   */
  maxTokenLifetime?: number;
  /**
   * Largest frame (its length field, bytes) read before the handshake is
   * done: a bigger first frame is refused with MB_ERR_FRAME_TOO_LARGE and the
   * connection closed without decoding it. Default 8,192 (a HELLO is ~100
   * bytes plus its token).
   */
  maxHelloSize?: number;
  /**
   * Failed authentications one remote address may make (client tokens over
   * TCP and WebSocket, the cluster secret, the HTTP admin token, all in one
   * table): past them it is refused with MB_ERR_AUTH_THROTTLED until its
   * allowance refills. Default 10 per 60 s, 10,000 addresses remembered.
   */
  authThrottle?: AuthThrottleOptions;
  /** Connections from one IP address. Default 1,024. */
  maxConnectionsPerIp?: number;
  /** Publishes per second per connection (token bucket); 0: unlimited. Default 0. */
  publishRate?: number;
  /** Burst of the publish rate limit. Default 2 × publishRate. */
  publishBurst?: number;
  /** Largest payload accepted from clients, bytes. Default 1 MiB. */
  maxPayload?: number;
  /** Largest topic, bytes. Default 256. */
  maxTopicLength?: number;
  /** Deepest topic, tokens. Default 32. */
  maxTopicDepth?: number;
  /**
   * Subscriptions per connection, by weight (this and the two below: SPEC 10.10,
   * "How subscriptions are counted": up to 4 tokens weigh 1, 32 tokens 6; a unit
   * holds at most ~1.5 KB of heap). Default 10,000.
   */
  maxSubscriptions?: number;
  /**
   * Client subscriptions per node, all connections together, by weight. Default 1,000,000
   * (about 1 KB of heap each with a 200-byte pattern, ≤ ~1.5 GB in all): per connection alone, one
   * host's 1,024 connections × 10,000 could hold 10 million, about 10 GB.
   */
  maxNodeSubscriptions?: number;
  /**
   * Client subscriptions from one host (IPv4 address, or IPv6 /64, as
   * `maxConnectionsPerIp` counts), all its connections together, by weight. Default a
   * quarter of `maxNodeSubscriptions` (250,000): without it one host could
   * take the whole node's bound and every other client's SUB would be
   * refused. A host behind a carrier NAT with 1,024 connections still has
   * about 244 subscriptions per connection.
   */
  maxSubscriptionsPerIp?: number;
  /** Client connections per node. Default 65,536. */
  maxConnections?: number;
  /** A connection must say HELLO within this many ms. Default 5,000. */
  handshakeTimeout?: number;
  /** Ping a silent connection after this many ms. Default 20,000. */
  pingInterval?: number;
  /** Unanswered pings before a connection is stale and closed. Default 2. */
  maxPingsOut?: number;
  /** Bytes queued for one connection beyond which the slow-consumer policy applies. Default 8 MiB, and at least two of the largest frames (`maxPayload`). */
  maxPending?: number;
  /** A connection whose socket accepted nothing for this many ms while data waited is closed. Default 10,000. */
  writeDeadline?: number;
  /**
   * Longest time a publisher is paused while a receiver catches up; after it, the
   * receiver no longer holds publishers back and its slow-consumer policy applies. Default 1,000.
   */
  maxStall?: number;
  /** On shutdown, wait at most this long for clients to take their last bytes. Default 5,000. */
  drainTimeout?: number;
  /**
   * Bytes of unfinished input the node holds, every connection and request
   * together (SPEC 9.5): frames not yet whole (clients, peers), WebSocket
   * messages not yet whole, HTTP bodies. Default 64 MiB and at least 4 of the
   * node's largest frames; at least 2 of them.
   */
  inputBudget?: number;
  /** ms: while inputs wait for the budget, a holder silent this long is closed, a waiter after twice this. Default 5,000. */
  inputStall?: number;
  /**
   * Bytes all outbound queues of the node hold together, client sessions and
   * peer links (SPEC 10.6): backlogs and what their wires hold. Past it the
   * connections holding the most are slow consumers by their policy. Default
   * 256 MiB and at least twice maxPending.
   */
  outboundBudget?: number;
  /** Client URLs of other nodes, announced in WELCOME for failover. */
  peers?: () => string[];
  logger?: Logger;
  /** Redis-backed durability (history, recovery, latest values, durable queues); off without `durable.redis`. */
  durable?: DurableOptions;
}

export type ResolvedOptions = Required<Omit<NodeOptions, 'durable' | 'token' | 'jwt' | 'tls' | 'otlpEndpoint' | 'id' | 'name' | 'peers' | 'logger' | 'authThrottle'>> &
  Pick<NodeOptions, 'token' | 'jwt' | 'tls' | 'otlpEndpoint' | 'authThrottle'> & { id: string; name: string; peers: () => string[]; logger: Logger };

/**
 * The largest frame a node decodes once a connection is open: payloads up to
 * twice maxPayload still decode (and are refused with a typed error).
 */
export function frameLimit(maxTopicLength: number, maxPayload: number): number {
  return HEADER_SIZE + maxTopicLength + MAX_EXT + maxPayload * 2;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new ConfigError(what);
}

export { ConfigError };

const isPosInt = (v: number): boolean => Number.isInteger(v) && v > 0;

export function resolveOptions(o: NodeOptions, defaults: { id: string; logger: Logger }): ResolvedOptions {
  // At least two of the largest frames by default: with --max-payload 16 MiB an 8 MiB bound made a 'drop' reader that
  // had not read one event a slow consumer at its next PING, the PONG past the bound (SPEC 10.6).
  const maxPending = o.maxPending ?? Math.max(8 * 1024 * 1024, 2 * frameLimit(o.maxTopicLength ?? DEFAULT_MAX_TOPIC, o.maxPayload ?? DEFAULT_MAX_PAYLOAD));
  const r: ResolvedOptions = {
    host: o.host ?? '127.0.0.1',
    port: o.port ?? 4480,
    id: o.id ?? defaults.id,
    name: o.name ?? '',
    nodeIdInClientIds: o.nodeIdInClientIds ?? false,
    token: o.token,
    jwt: o.jwt,
    tls: o.tls,
    authThrottle: o.authThrottle,
    otlpEndpoint: o.otlpEndpoint,
    maxTokenLifetime: o.maxTokenLifetime ?? 0,
    maxHelloSize: o.maxHelloSize ?? 8192,
    maxConnectionsPerIp: o.maxConnectionsPerIp ?? 1024,
    publishRate: o.publishRate ?? 0,
    publishBurst: o.publishBurst ?? Math.max(1, 2 * (o.publishRate ?? 0)),
    maxPayload: o.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    maxTopicLength: o.maxTopicLength ?? DEFAULT_MAX_TOPIC,
    maxTopicDepth: o.maxTopicDepth ?? DEFAULT_MAX_TOPIC_DEPTH,
    maxSubscriptions: o.maxSubscriptions ?? 10_000,
    maxNodeSubscriptions: o.maxNodeSubscriptions ?? 1_000_000,
    maxSubscriptionsPerIp: o.maxSubscriptionsPerIp ?? Math.max(1, Math.floor((o.maxNodeSubscriptions ?? 1_000_000) / 4)),
    maxConnections: o.maxConnections ?? 65_536,
    handshakeTimeout: o.handshakeTimeout ?? 5_000,
    pingInterval: o.pingInterval ?? 20_000,
    maxPingsOut: o.maxPingsOut ?? 2,
    maxPending,
    writeDeadline: o.writeDeadline ?? 10_000,
    drainTimeout: o.drainTimeout ?? 5_000,
    maxStall: o.maxStall ?? 1_000,
    inputBudget: o.inputBudget ?? defaultInputBudget(frameLimit(o.maxTopicLength ?? DEFAULT_MAX_TOPIC, o.maxPayload ?? DEFAULT_MAX_PAYLOAD)),
    inputStall: o.inputStall ?? 5_000,
    outboundBudget: o.outboundBudget ?? Math.max(256 * 1024 * 1024, 2 * maxPending),
    peers: o.peers ?? (() => []),
    logger: o.logger ?? defaults.logger,
  };
  check(Number.isInteger(r.port) && r.port >= 0 && r.port < 65536, `port must be 0..65535, got ${o.port}`);
  check(/^[0-9a-f]{16}$/.test(r.id), `id must be 16 lowercase hex digits, got ${o.id}`);
  // The largest payload a frame can carry: the 32-bit frame length minus the header, the longest topic and extensions.
  const maxPayload = 0xffffffff - HEADER_SIZE - 0xffff - MAX_EXT;
  check(isPosInt(r.maxPayload) && r.maxPayload <= maxPayload, `maxPayload must be 1..${maxPayload} bytes, got ${o.maxPayload}`);
  check(isPosInt(r.maxTopicLength) && r.maxTopicLength <= 0xffff, `maxTopicLength must be 1..65535`);
  for (const k of ['maxTopicDepth', 'maxSubscriptions', 'maxNodeSubscriptions', 'maxSubscriptionsPerIp', 'maxConnections', 'handshakeTimeout', 'pingInterval', 'maxPingsOut', 'maxPending', 'writeDeadline', 'drainTimeout', 'maxStall', 'maxConnectionsPerIp', 'publishBurst', 'maxHelloSize', 'inputBudget', 'inputStall', 'outboundBudget'] as const) {
    check(isPosInt(r[k]), `${k} must be a positive integer, got ${String(o[k])}`);
  }
  check(r.maxHelloSize >= 256, `maxHelloSize must be at least 256, got ${o.maxHelloSize}`);
  const frame = frameLimit(r.maxTopicLength, r.maxPayload);
  check(r.inputBudget >= 2 * frame, `inputBudget must be at least twice the largest frame (${2 * frame} bytes with maxPayload ${r.maxPayload}), got ${o.inputBudget}`);
  for (const k of ['handshakeTimeout', 'pingInterval', 'writeDeadline', 'drainTimeout', 'maxStall', 'inputStall'] as const) {
    check(r[k] <= MAX_TIMER_MS, `${k} must be at most ${MAX_TIMER_MS} ms (the longest timer), got ${String(o[k])}`);
  }
  check(Number.isInteger(r.maxTokenLifetime) && r.maxTokenLifetime >= 0, `maxTokenLifetime must be a whole number of seconds >= 0, got ${o.maxTokenLifetime}`);
  check(Number.isFinite(r.publishRate) && r.publishRate >= 0, `publishRate must be >= 0, got ${o.publishRate}`);
  if (r.otlpEndpoint !== undefined) check(/^https?:\/\/[^/]/.test(r.otlpEndpoint), `otlpEndpoint must be an http(s) URL, got ${r.otlpEndpoint}`);
  if (r.jwt) {
    const problem = jwtKeysProblem(r.jwt);
    check(problem === undefined, problem ?? '');
  }
  return r;
}

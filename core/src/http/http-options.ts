// The options of the HTTP API and the checks made before anything loads: no
// fastify or prom-client at run time (types only), so the on-demand listener
// (http-on-demand.ts) checks, listens and logs without loading them.
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { hostPort } from '@meshbus/proto';
import type { ClusterView } from '../cluster-view.js';
import { ConfigError, MAX_TIMER_MS } from '../config-error.js';
import { jsonLogger, loggerAt, pinoOf, type LogLevel, type Logger } from '../logger.js';
import type { MeshNode } from '../node.js';
import type { ConnectionLimits } from '../listener-limits.js';
import type { TlsConfig } from '../tls-config.js';
import type { HttpStats } from './metrics.js';
import { DEFAULT_HTTP_PORT, openAdminRefusal } from './open-admin.js';
import type { RateHistory } from './rate-history.js';

/** Default of the HTTP API's maxWaiting: calls waiting at once on a node (requests, traces, mesh and workers views). */
export const DEFAULT_HTTP_MAX_WAITING = 1024;

export interface HttpOptions {
  /** Port of the HTTP API; 0 picks a free one. Default 8480. */
  port?: number;
  /** Interface to listen on. Default: the node's client interface. */
  host?: string;
  /**
   * When set, every route except the probes, /metrics and the dashboard page
   * requires `Authorization: Bearer <adminToken>` (see access.ts OPEN_ROUTES).
   * Without it the API is open, which startHttp allows only on a loopback host
   * of a node that does not require client auth, unless `insecureOpenAdmin`.
   */
  adminToken?: string;
  /**
   * Start without `adminToken` even on a non-loopback host or on a node that
   * requires client tokens (anyone who reaches the port can then publish,
   * bypassing client auth); logs a warning. Default false.
   */
  insecureOpenAdmin?: boolean;
  /** The cluster this node belongs to (readiness, peers, links); can also be attached later. */
  cluster?: ClusterView;
  /**
   * Request and API logs: true or a level turns them on (the CLI does);
   * default off (tests, embedding). They go to the node's log sink when
   * jsonLogger made the node's logger (one stream, one format; a level given
   * here applies to the HTTP records only), else to stderr in the same format.
   */
  logger?: boolean | Exclude<LogLevel, 'silent'>;
  /** Default wait for a reply to POST /v1/request, ms. Default 5,000. */
  requestTimeout?: number;
  /** Largest `?timeout=` POST /v1/request accepts, ms. Default 60,000. */
  maxRequestTimeout?: number;
  /** Calls waiting at once on the node (see MeshbusHttpOptions.maxWaiting). Default 1,024. */
  maxWaiting?: number;
  /** Seconds of 1-second rate samples kept for the dashboard. Default 300. */
  historySeconds?: number;
  /** Serve HTTPS with this certificate (and require client certificates when asked). */
  tls?: TlsConfig;
  /** Labels on every series of /metrics (see MeshbusHttpOptions.metricsLabels). */
  metricsLabels?: Record<string, string>;
  /** Serves GET /metrics from this instead of the node's own registry (see MeshbusHttpOptions.metricsSource). */
  metricsSource?: (own: Registry) => Promise<string>;
  /** GET /metrics renders at most once per this many ms (see MeshbusHttpOptions.metricsMinInterval). Default 1,000. */
  metricsMinInterval?: number;
  /** Answers GET /v1/workers (see MeshbusHttpOptions.workers). */
  workers?: () => Promise<unknown[]>;
  /**
   * HTTP connections open at once, every host together; past it a new one is
   * refused (503 MB_ERR_TOO_MANY_CONNECTIONS, see listener-limits.ts).
   * Default 1,024.
   */
  maxConnections?: number;
  /**
   * HTTP connections open at once from one host (an IPv4 address or an IPv6
   * /64, as the client port's maxConnectionsPerIp counts; behind a reverse
   * proxy every caller is the proxy). Default 64.
   */
  maxConnectionsPerIp?: number;
  /**
   * Requests one connection may have made whose answers are not written out
   * yet (pipelined, the other end not reading); past it the connection is
   * closed (see listener-limits.ts). Default 8.
   */
  maxPipelined?: number;
}

export interface HttpServer {
  /** The port the API listens on. */
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  /** The fastify instance (for `inject` in tests, or to add routes). */
  readonly app: FastifyInstance;
  readonly stats: HttpStats;
  /** The prom-client registry of this node's series. */
  readonly registry: Registry;
  /** The 1-second rate samples behind /v1/stats/history. */
  readonly history: RateHistory;
  /** Sets (or replaces) the cluster view once the cluster layer is up. */
  attachCluster(view: ClusterView | undefined): void;
  /** Stops listening; requests waiting for replies fail with MB_ERR_DRAINING. */
  close(): Promise<void>;
}

/** Checks port and exposure: the open-admin refusal to warn about (allowed by insecureOpenAdmin), or undefined. Throws ConfigError. */
export function checkHttpOptions(node: MeshNode, options: HttpOptions): string | undefined {
  const port = options.port ?? DEFAULT_HTTP_PORT;
  const host = options.host ?? node.host;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`http.port must be 0..65535, got ${options.port}`);
  httpConnectionLimits(options);
  const refusal = options.adminToken === undefined ? openAdminRefusal(node, host) : undefined;
  if (refusal !== undefined && options.insecureOpenAdmin !== true) {
    throw new ConfigError(`${refusal} (set adminToken / --admin-token; or insecureOpenAdmin / --http-insecure-open on to run it open anyway)`);
  }
  return refusal;
}

/** Default of HttpOptions.maxConnections. */
export const DEFAULT_HTTP_MAX_CONNECTIONS = 1024;
/** Default of HttpOptions.maxConnectionsPerIp: a few scrapers, dashboards and scripts per host, not a descriptor table. */
export const DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP = 64;

/** Default of HttpOptions.maxPipelined: browsers, curl and Prometheus never pipeline; room for a client that does. */
export const DEFAULT_HTTP_MAX_PIPELINED = 8;

/** The connection bounds of the API's listener, defaults applied; throws ConfigError. */
export function httpConnectionLimits(options: HttpOptions): ConnectionLimits {
  const maxConnections = options.maxConnections ?? DEFAULT_HTTP_MAX_CONNECTIONS;
  const maxConnectionsPerIp = options.maxConnectionsPerIp ?? DEFAULT_HTTP_MAX_CONNECTIONS_PER_IP;
  const maxPipelined = options.maxPipelined ?? DEFAULT_HTTP_MAX_PIPELINED;
  for (const [k, v] of [['maxConnections', maxConnections], ['maxConnectionsPerIp', maxConnectionsPerIp], ['maxPipelined', maxPipelined]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new ConfigError(`http.${k} must be a positive integer, got ${v}`);
  }
  return { maxConnections, maxConnectionsPerIp, maxPipelined };
}

/** Logs that the API runs open where it would have been refused (insecureOpenAdmin). */
export function warnOpen(node: MeshNode, host: string, port: number, refusal: string): void {
  node.logger.warn({ host, port }, `INSECURE: ${refusal}, but insecureOpenAdmin is set: anyone who reaches this port can publish and read the admin views`);
}

/** The API's base URL: http(s)://host:port, an IPv6 host in brackets. */
export function httpUrl(options: HttpOptions, host: string, port: number): string {
  return `${options.tls ? 'https' : 'http'}://${hostPort(host, port)}`;
}

/** The options checkPluginOptions reads (a part of MeshbusHttpOptions). */
export interface CheckedHttpOptions {
  node: MeshNode;
  adminToken?: string;
  insecureOpenAdmin?: boolean;
  requestTimeout?: number;
  maxRequestTimeout?: number;
  maxWaiting?: number;
  historySeconds?: number;
  metricsMinInterval?: number;
}

const isPosInt = (v: number): boolean => Number.isInteger(v) && v > 0;

/**
 * Checks the HTTP API's options (the plugin's, and the on-demand listener's
 * before it loads the plugin); throws ConfigError. Returns the timeouts
 * (ms), history length (s) and metrics interval (ms) with defaults.
 */
export function checkPluginOptions(o: CheckedHttpOptions): { requestTimeout: number; maxRequestTimeout: number; historySeconds: number; metricsMinInterval: number; maxWaiting: number } {
  const requestTimeout = o.requestTimeout ?? 5_000;
  const maxWaiting = o.maxWaiting ?? DEFAULT_HTTP_MAX_WAITING;
  const metricsMinInterval = o.metricsMinInterval ?? 1_000;
  if (!Number.isInteger(metricsMinInterval) || metricsMinInterval < 0) throw new ConfigError(`metricsMinInterval must be a non-negative integer, got ${metricsMinInterval}`);
  const maxRequestTimeout = o.maxRequestTimeout ?? 60_000;
  const historySeconds = o.historySeconds ?? 300;
  if (o.adminToken !== undefined && (typeof o.adminToken !== 'string' || o.adminToken.length === 0)) {
    throw new ConfigError('adminToken must be a non-empty string');
  }
  for (const [k, v] of [['requestTimeout', requestTimeout], ['maxRequestTimeout', maxRequestTimeout], ['historySeconds', historySeconds], ['maxWaiting', maxWaiting]] as const) {
    if (!isPosInt(v)) throw new ConfigError(`${k} must be a positive integer, got ${v}`);
  }
  // A request's wait arms a timer: past the longest one it fires after 1 ms (every request a 504 at once).
  if (maxRequestTimeout > MAX_TIMER_MS) throw new ConfigError(`maxRequestTimeout must be at most ${MAX_TIMER_MS} ms (the longest timer), got ${maxRequestTimeout}`);
  if (requestTimeout > maxRequestTimeout) throw new ConfigError(`requestTimeout ${requestTimeout} exceeds maxRequestTimeout ${maxRequestTimeout}`);
  const n = o.node;
  if (o.adminToken === undefined && o.insecureOpenAdmin !== true && (n.options.token !== undefined || n.options.jwt !== undefined)) {
    throw new ConfigError('the HTTP API of a node that requires client tokens needs an admin token (set adminToken; or insecureOpenAdmin to run it open anyway)');
  }
  return { requestTimeout, maxRequestTimeout, historySeconds, metricsMinInterval, maxWaiting };
}

/**
 * The HTTP API's own logger for `logger` (HttpOptions.logger): the node's,
 * at the level asked for, when jsonLogger made it, else a jsonLogger of the
 * same line on stderr; undefined when off. Loads nothing (the on-demand
 * listener logs through it before fastify is loaded).
 */
export function httpLog(node: MeshNode, logger: HttpOptions['logger']): Logger | undefined {
  if (logger === undefined || logger === false) return undefined;
  return loggerAt(node.logger, logger === true ? undefined : logger) ?? jsonLogger(logger === true ? 'info' : logger, { node: node.id });
}

/** fastify's logger options for `logger`: a pino instance writing httpLog's line to its sink (loads pino), or none. */
export function httpLogger(node: MeshNode, logger: HttpOptions['logger']): { loggerInstance: FastifyBaseLogger } | { logger: false } {
  const log = httpLog(node, logger);
  const pino = log && pinoOf(log);
  return pino ? { loggerInstance: pino } : { logger: false };
}

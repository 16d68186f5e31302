import type { TlsConfig } from '../tls-config.js';
import type { Registry } from 'prom-client';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { ClusterView } from '../cluster-view.js';
import { jsonLogger, pinoOf, type LogLevel } from '../logger.js';
import type { MeshNode } from '../node.js';
import { ConfigError } from '../config-error.js';
import { createListenerServer } from '../listener-timeouts.js';
import { classify } from './http-errors.js';
import type { HttpStats } from './metrics.js';
import { meshbusHttp, type MeshbusHttpApi } from './plugin.js';
import { DEFAULT_HTTP_PORT, openAdminRefusal } from './open-admin.js';
import type { RateHistory } from './rate-history.js';

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
   * default off (tests, embedding). They go through the node's logger when
   * jsonLogger made it (one pino instance: one stream, one format; a level
   * given here applies to the HTTP records only), else through a pino
   * logger of the same format on stderr.
   */
  logger?: boolean | Exclude<LogLevel, 'silent'>;
  /** Default wait for a reply to POST /v1/request, ms. Default 5,000. */
  requestTimeout?: number;
  /** Largest `?timeout=` POST /v1/request accepts, ms. Default 60,000. */
  maxRequestTimeout?: number;
  /** Seconds of 1-second rate samples kept for the dashboard. Default 300. */
  historySeconds?: number;
  /** Serve HTTPS with this certificate (and require client certificates when asked). */
  tls?: TlsConfig;
  /** Labels on every series of /metrics (see MeshbusHttpOptions.metricsLabels). */
  metricsLabels?: Record<string, string>;
  /** Serves GET /metrics from this instead of the node's own registry (see MeshbusHttpOptions.metricsSource). */
  metricsSource?: (own: Registry) => Promise<string>;
  /** Answers GET /v1/workers (see MeshbusHttpOptions.workers). */
  workers?: () => Promise<unknown[]>;
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


/**
 * The HTTP API of `node` on a port of its own: a fastify app with the node's
 * listener policy (handshake timeout, TLS) and logger, the `meshbusHttp`
 * plugin registered at the root, listening. Throws ConfigError for bad
 * options, a port in use or an open API where it must not be open.
 */
export async function listenHttp(node: MeshNode, options: HttpOptions = {}): Promise<HttpServer> {
  const port = options.port ?? DEFAULT_HTTP_PORT;
  const host = options.host ?? node.host;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`http port must be 0..65535, got ${options.port}`);
  const refusal = options.adminToken === undefined ? openAdminRefusal(node, host) : undefined;
  if (refusal !== undefined && options.insecureOpenAdmin !== true) {
    throw new ConfigError(`${refusal} (set adminToken / --admin-token; or insecureOpenAdmin / --http-insecure-open on to run it open anyway)`);
  }

  const app = Fastify({
    // The listener handshake policy shared with the WebSocket gateway (listener-timeouts.ts).
    serverFactory: (handler) => createListenerServer(handler, node.options.handshakeTimeout, options.tls),
    // One logger per process: the node's own pino when jsonLogger made it (same stream, same line).
    ...httpLogger(node, options.logger),
    // Our own onResponse hook logs requests (probes and dashboard polls at debug level).
    logController: new LogController({ disableRequestLogging: true }),
    // Topics travel in the path; let topic validation, not the router, refuse long ones.
    routerOptions: { maxParamLength: 16_384 },
    bodyLimit: node.options.maxPayload,
    forceCloseConnections: true,
    return503OnClosing: true,
    frameworkErrors: (err, _req, reply) => {
      const c = classify(err);
      // send() returns the reply (a thenable that makes no promise unless awaited): nothing can reject here.
      void (reply as FastifyReply).code(c.status).send(c.body);
    },
  });

  let api: MeshbusHttpApi | undefined;
  try {
    await app.register(meshbusHttp, {
      node,
      adminToken: options.adminToken,
      insecureOpenAdmin: options.insecureOpenAdmin,
      cluster: options.cluster,
      requestTimeout: options.requestTimeout,
      maxRequestTimeout: options.maxRequestTimeout,
      historySeconds: options.historySeconds,
      scheme: options.tls ? 'https' : 'http',
      metricsLabels: options.metricsLabels,
      metricsSource: options.metricsSource,
      workers: options.workers,
      onApi: (a) => (api = a),
    });
    await app.listen({ port, host });
  } catch (e) {
    await app.close();
    if (e instanceof ConfigError) throw e;
    const err = e as NodeJS.ErrnoException;
    throw err.code === 'EADDRINUSE'
      ? new ConfigError(`http port ${port} on ${host} is already in use`)
      : new ConfigError(`cannot listen for HTTP on ${host}:${port}: ${err.message}`);
  }
  const { stats, registry, history, attachCluster } = api!;
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  app.log.info({ host, port: bound }, 'http api listening');
  if (refusal !== undefined) node.logger.warn({ host, port: bound }, `INSECURE: ${refusal}, but insecureOpenAdmin is set: anyone who reaches this port can publish and read the admin views`);
  let closed = false;
  return {
    port: bound,
    url: `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    app,
    stats,
    registry,
    history,
    attachCluster,
    async close() {
      if (closed) return;
      closed = true;
      // The plugin's onClose hook fails waiting requests (MB_ERR_DRAINING) and stops the rate sampler.
      await app.close();
    },
  };
}

/** fastify's logger options for `logger` (HttpOptions.logger): the node's pino instance, a child at another level, or none. */
function httpLogger(node: MeshNode, logger: HttpOptions['logger']): { loggerInstance: FastifyBaseLogger } | { logger: false } {
  if (logger === undefined || logger === false) return { logger: false };
  const own = pinoOf(node.logger);
  if (own) return { loggerInstance: logger === true || logger === own.level ? own : own.child({}, { level: logger }) };
  const level = logger === true ? 'info' : logger;
  return { loggerInstance: pinoOf(jsonLogger(level, { node: node.id }))! };
}

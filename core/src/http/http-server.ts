import type { TlsConfig } from '../tls-config.js';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ClusterView } from '../cluster-view.js';
import type { LogLevel } from '../logger.js';
import type { MeshNode } from '../node.js';
import { ConfigError } from '../options.js';
import { createListenerServer } from '../listener-timeouts.js';
import { accessCheck } from './access.js';
import { DASHBOARD_HTML } from './dashboard/page.js';
import { classify, errorBody } from './http-errors.js';
import { RequestInbox } from './inbox.js';
import { METRICS_CONTENT_TYPE, newHttpStats, renderMetrics, type HttpStats } from './metrics.js';
import { registerTraceRoutes } from './trace-routes.js';
import { registerPublishRoutes } from './publish-routes.js';
import { RateHistory } from './rate-history.js';
import { MAX_PAGE, clusterView, connectionsView, historyView, intParam, nodeView, readiness, statsView, subscriptionsView, type ViewContext } from './views.js';

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
   * fastify's own logger (pino), one JSON line per record with the node id:
   * true or a level turns it on (the CLI does); default off (tests, embedding).
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
}

export interface HttpServer {
  /** The port the API listens on. */
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  /** The fastify instance (for `inject` in tests, or to add routes). */
  readonly app: FastifyInstance;
  readonly stats: HttpStats;
  /** The 1-second rate samples behind /v1/stats/history. */
  readonly history: RateHistory;
  /** Sets (or replaces) the cluster view once the cluster layer is up. */
  attachCluster(view: ClusterView | undefined): void;
  /** Stops listening; requests waiting for replies fail with MB_ERR_DRAINING. */
  close(): Promise<void>;
}

export const DEFAULT_HTTP_PORT = 8480;

const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

const isPosInt = (v: number): boolean => Number.isInteger(v) && v > 0;

/** True for an interface only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^::ffff:127\./.test(h);
}

/**
 * Why an HTTP API without an admin token must not start, or undefined when it
 * may: a host other hosts can reach, or a node whose clients need a token
 * (the API would be a way around it).
 */
function openAdminRefusal(node: MeshNode, host: string): string | undefined {
  if (!isLoopbackHost(host)) return `the HTTP API on non-loopback host ${host} needs an admin token`;
  if (node.options.token !== undefined || node.options.jwt !== undefined) return 'the HTTP API of a node that requires client tokens needs an admin token';
  return undefined;
}

/** The HTTP API of `node`: health, metrics, JSON views, publish/request and the dashboard. */
export async function startHttp(node: MeshNode, options: HttpOptions = {}): Promise<HttpServer> {
  const port = options.port ?? DEFAULT_HTTP_PORT;
  const host = options.host ?? node.host;
  const requestTimeout = options.requestTimeout ?? 5_000;
  const maxRequestTimeout = options.maxRequestTimeout ?? 60_000;
  const historySeconds = options.historySeconds ?? 300;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`http port must be 0..65535, got ${options.port}`);
  if (options.adminToken !== undefined && (typeof options.adminToken !== 'string' || options.adminToken.length === 0)) {
    throw new ConfigError('adminToken must be a non-empty string');
  }
  for (const [k, v] of [['requestTimeout', requestTimeout], ['maxRequestTimeout', maxRequestTimeout], ['historySeconds', historySeconds]] as const) {
    if (!isPosInt(v)) throw new ConfigError(`${k} must be a positive integer, got ${v}`);
  }
  if (requestTimeout > maxRequestTimeout) throw new ConfigError(`requestTimeout ${requestTimeout} exceeds maxRequestTimeout ${maxRequestTimeout}`);
  const refusal = options.adminToken === undefined ? openAdminRefusal(node, host) : undefined;
  if (refusal !== undefined && options.insecureOpenAdmin !== true) {
    throw new ConfigError(`${refusal} (set adminToken / --admin-token; or insecureOpenAdmin / --http-insecure-open on to run it open anyway)`);
  }

  const level = options.logger === true ? 'info' : options.logger || undefined;
  const app = Fastify({
    // The listener handshake policy shared with the WebSocket gateway (listener-timeouts.ts).
    serverFactory: (handler) => createListenerServer(handler, node.options.handshakeTimeout, options.tls),
    // Same line shape as the node's own jsonLogger: string levels, the node id on every line.
    logger: level ? { level, base: { pid: process.pid, node: node.id }, formatters: { level: (label: string) => ({ level: label }) } } : false,
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

  const ctx: ViewContext = { node, cluster: options.cluster, version: VERSION, httpPort: 0 };
  const stats = newHttpStats();
  const history = new RateHistory(node.stats, 1000, historySeconds);
  const inbox = new RequestInbox(node, stats.repliesDropped);

  // Payloads are bytes whatever their content type: no JSON or text parsing.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const c = classify(err);
    if (c.internal) req.log.error({ err }, 'HTTP handler failed');
    // A thenable reply, never a promise unless awaited: nothing can reject here.
    void reply.code(c.status).send(c.body);
  });
  app.setNotFoundHandler((req, reply) => {
    // A thenable reply, never a promise unless awaited: nothing can reject here.
    void reply.code(404).send(errorBody('MB_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });

  // Deny by default, decided on the matched route (access.ts); runs for the not-found handler too.
  app.addHook('onRequest', accessCheck(options.adminToken, options.tls ? 'https' : 'http'));
  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    const status = reply.statusCode;
    const rec = { method: req.method, url: req.url, status, ms: Math.round(reply.elapsedTime * 100) / 100 };
    if (status >= 500) req.log.warn(rec, 'http');
    else if (req.method === 'GET' || req.method === 'HEAD') req.log.debug(rec, 'http');
    else req.log.info(rec, 'http');
  });

  app.get('/healthz', async () => ({ status: 'ok', id: node.id }));
  app.get('/readyz', async (_req, reply) => {
    const r = readiness(ctx);
    if (r.ready) return r;
    const code = r.draining ? 'MB_ERR_DRAINING' : 'MB_ERR_NOT_READY';
    const why = r.draining ? 'node is draining' : !r.listening ? 'node is not listening' : 'cluster not joined';
    return reply.code(503).send({ ...errorBody(code, why), ...r });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', METRICS_CONTENT_TYPE);
    return renderMetrics({ node, cluster: ctx.cluster, history, http: stats, version: VERSION });
  });
  const page = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
      .send(DASHBOARD_HTML);
  app.get('/', page);
  app.get('/dashboard', page);

  app.get('/v1/node', async () => nodeView(ctx));
  app.get('/v1/cluster', async () => clusterView(ctx));
  app.get<{ Querystring: { offset?: string; limit?: string } }>('/v1/connections', async (req) => {
    const offset = intParam(req.query.offset, 'offset', 0, 0, 0xffffffff);
    const limit = intParam(req.query.limit, 'limit', 100, 1, MAX_PAGE);
    return connectionsView(node, offset, limit);
  });
  app.get('/v1/subscriptions', async () => subscriptionsView(node));
  app.get('/v1/stats', async () => statsView(node, history));
  app.get('/v1/stats/history', async () => historyView(history));
  registerPublishRoutes(app, { node, inbox, stats, requestTimeout, maxRequestTimeout });
  registerTraceRoutes(app, node);

  try {
    await app.listen({ port, host });
  } catch (e) {
    history.close();
    await app.close();
    const err = e as NodeJS.ErrnoException;
    throw err.code === 'EADDRINUSE'
      ? new ConfigError(`http port ${port} on ${host} is already in use`)
      : new ConfigError(`cannot listen for HTTP on ${host}:${port}: ${err.message}`);
  }
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  ctx.httpPort = bound;
  app.log.info({ host, port: bound }, 'http api listening');
  if (refusal !== undefined) node.logger.warn({ host, port: bound }, `INSECURE: ${refusal}, but insecureOpenAdmin is set: anyone who reaches this port can publish and read the admin views`);
  let closed = false;
  return {
    port: bound,
    url: `${options.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    app,
    stats,
    history,
    attachCluster(view) {
      ctx.cluster = view;
    },
    async close() {
      if (closed) return;
      closed = true;
      inbox.close();
      history.close();
      await app.close();
    },
  };
}

import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { ClusterView } from '../cluster-view.js';
import type { MeshNode } from '../node.js';
import { bodyBudget } from './body-budget.js';
import { accessCheck } from './access.js';
import { dashboardHtml } from './dashboard/page.js';
import { MeshStats, nodeSummary } from './dashboard/mesh-stats.js';
import { SlowConsumerLog } from './dashboard/slow-consumers.js';
import { classify, errorBody } from './http-errors.js';
import { RequestInbox } from './inbox.js';
import type { Registry } from 'prom-client';
import { METRICS_CONTENT_TYPE, newHttpStats, type HttpStats } from './metrics.js';
import { registerTraceRoutes } from './trace-routes.js';
import { WaitingCalls, untilAborted } from './waiting-calls.js';
import { registerPublishRoutes } from './publish-routes.js';
import { RateHistory } from './rate-history.js';
import { ScrapeCache } from './scrape-cache.js';
import { checkPluginOptions } from './http-options.js';
import { DEFAULT_PAGE, MAX_PAGE, clusterView, connectionsView, historyView, intParam, nodeView, readiness, statsView, subscriptionsView, type ViewContext } from './views.js';
import { errorSite, throttled } from '../told-recently.js';
import { NOSNIFF } from './served-types.js';
import { holdAnswers } from './answer-hold.js';

/** Options of the `meshbusHttp` fastify plugin (plus fastify's own `prefix`). */
export interface MeshbusHttpOptions {
  /** The node the API serves. */
  node: MeshNode;
  /**
   * When set, every route except the probes, /metrics and the dashboard page
   * requires `Authorization: Bearer <adminToken>` (see access.ts OPEN_ROUTES).
   * Without it the routes are open: refused (ConfigError at registration) on
   * a node that requires client tokens unless `insecureOpenAdmin`, as the API
   * would be a way around client auth. In your own app, who reaches the port is yours to decide.
   */
  adminToken?: string;
  /** Register without `adminToken` on a node that requires client tokens. Default false. */
  insecureOpenAdmin?: boolean;
  /**
   * Answer only requests whose `Host` header names this machine (`localhost`,
   * `*.localhost`, 127.x, `[::1]`; 403 MB_ERR_PERMISSION_DENIED otherwise):
   * an API without `adminToken` on a loopback port, against DNS-rebinding
   * pages. `startHttp` sets it when it runs without `adminToken` and without
   * `insecureOpenAdmin`. Default false.
   */
  loopbackHostsOnly?: boolean;
  /** The cluster this node belongs to (readiness, peers, links); can also be attached later (`onApi`). */
  cluster?: ClusterView;
  /** Default wait for a reply to POST /v1/request, ms. Default 5,000. */
  requestTimeout?: number;
  /** Largest `?timeout=` POST /v1/request accepts, ms. Default 60,000. */
  maxRequestTimeout?: number;
  /**
   * Calls waiting at once on the node (POST /v1/request and /v1/trace, GET
   * /v1/mesh and /v1/workers; every HTTP API of the node counted together)
   * past which this API refuses another with 503 MB_ERR_TOO_MANY_CONNECTIONS.
   * Default 1,024.
   */
  maxWaiting?: number;
  /** Seconds of 1-second rate samples kept for the dashboard. Default 300. */
  historySeconds?: number;
  /** Rate samples kept by the caller (sampling since before the plugin was registered; the caller closes it). Default: the plugin's own, of historySeconds. */
  history?: RateHistory;
  /** Scheme clients reach the API with, for the POST Origin check. Default 'http'. */
  scheme?: 'http' | 'https';
  /** Labels put on every series of this node's /metrics (e.g. `{ worker: '0' }`); names must not clash with the series' own. */
  metricsLabels?: Record<string, string>;
  /**
   * Serves GET /metrics from this instead of the node's own registry, given
   * that registry (`meshbus start --workers`: every worker's series, gathered
   * by the primary). Resolves with the exposition text (METRICS_CONTENT_TYPE).
   */
  metricsSource?: (own: Registry) => Promise<string>;
  /**
   * GET /metrics renders at most once per this many ms and one rendering at a
   * time: scrapes meanwhile get the last text (see scrape-cache.ts; the route
   * is open, and a rendering costs the node time in proportion to its state).
   * 0: every scrape renders, still one at a time. Default 1,000.
   */
  metricsMinInterval?: number;
  /**
   * The processes serving this API together, for GET /v1/workers and the
   * dashboard's per-worker table (`meshbus start --workers`: one object per
   * worker, gathered by the primary). Without it /v1/workers lists none.
   */
  workers?: () => Promise<unknown[]>;
  /** Called once at registration with the API's counters, rate history and cluster setter. */
  onApi?(api: MeshbusHttpApi): void;
}

/** What the plugin exposes to whoever registered it. */
export interface MeshbusHttpApi {
  readonly stats: HttpStats;
  /** The prom-client registry behind /metrics (this node's series only). */
  readonly registry: Registry;
  /** The 1-second rate samples behind /v1/stats/history. */
  readonly history: RateHistory;
  /** Sets (or replaces) the cluster view once the cluster layer is up. */
  attachCluster(view: ClusterView | undefined): void;
}

const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();


/**
 * Refusals of the access check that cost the caller nothing: no token (401)
 * and an address out of failed attempts (429). Logged at debug, as probes
 * are: at info, anyone who reached the port had the node write a line per
 * request, URL included (16 connections posting 15 KB URLs without a token:
 * 50 MB of log a second, written synchronously to stderr by the CLI). A
 * wrong token (403) stays at info: each is charged to its address by the
 * failed-auth throttle, so an address writes at most maxFailures of them per
 * window (and counted in meshbus_auth_failed_attempts_total).
 */
const UNCHARGED_REFUSALS: ReadonlySet<number> = new Set([401, 429]);

/** Longest request target a log record carries (the rest is cut: a target can be as long as the header limit, 16 KiB). */
const LOG_URL_MAX = 256;

function logUrl(url: string): string {
  return url.length > LOG_URL_MAX ? `${url.slice(0, LOG_URL_MAX)}… (${url.length} chars)` : url;
}

/**
 * The meshbus HTTP API as a fastify plugin: health, metrics, JSON views,
 * publish/request, traces and the dashboard, under the registration's prefix:
 *
 *     app.register(meshbusHttp, { node, prefix: '/meshbus', adminToken })
 *
 * Its error and not-found handlers, access check, content-type parser and
 * body limit (the node's maxPayload) apply to its own routes only (fastify
 * encapsulation). Waiting requests fail with MB_ERR_DRAINING and the rate
 * sampler stops when the app closes. `startHttp` is this plugin in a fastify
 * app of its own, listening on its own port.
 */
export const meshbusHttp: FastifyPluginAsync<MeshbusHttpOptions> = async (app: FastifyInstance, options: MeshbusHttpOptions) => {
  const { node } = options;
  const { requestTimeout, maxRequestTimeout, historySeconds, metricsMinInterval, maxWaiting } = checkPluginOptions(options);
  const prefix = app.prefix;
  const ctx: ViewContext = {
    node,
    cluster: options.cluster,
    version: VERSION,
    maxWaiting,
    // The port the app listens on, whoever made it listen.
    get httpPort(): number {
      const addr = app.server.address();
      return typeof addr === 'object' && addr ? addr.port : 0;
    },
  };
  const stats = newHttpStats();
  // Given by the on-demand listener (http-on-demand.ts), which samples from start-up; else the plugin's own.
  const history = options.history ?? new RateHistory(node.stats, 1000, historySeconds);
  const inbox = new RequestInbox(node, stats.repliesDropped);
  const slow = new SlowConsumerLog(node);
  const mesh = new MeshStats({ node, cluster: () => ctx.cluster, summary: () => nodeSummary(ctx, history, slow), inbox, adminToken: options.adminToken });
  // Only a clustered node has anyone to answer: a standalone node adds no subscription.
  if (ctx.cluster) mesh.start();
  // prom-client is loaded here, by registration, not by importing @meshbus/core/http.
  const { createNodeMetrics } = await import('./node-metrics.js');
  const { registry, detach } = createNodeMetrics({ node, cluster: () => ctx.cluster, history, http: stats, version: VERSION, maxWaiting });
  if (options.metricsLabels) registry.setDefaultLabels(options.metricsLabels);
  const source = options.metricsSource ?? ((own: Registry) => own.metrics());
  const scrapes = new ScrapeCache(() => source(registry), metricsMinInterval);
  // Calls waiting for a reply, a trace's wait or the mesh's figures are failed (503 MB_ERR_DRAINING) and answered before fastify cuts the connections.
  const waiting = new WaitingCalls(app, node, maxWaiting, () => {
    mesh.close();
    inbox.close();
  });
  app.addHook('onClose', async () => {
    if (history !== options.history) history.close();
    slow.close();
    detach();
  });
  options.onApi?.({
    stats,
    registry,
    history,
    attachCluster(view) {
      ctx.cluster = view;
      if (view) mesh.start();
    },
  });

  // Publish bodies up to the node's payload limit, whatever the app's own bodyLimit.
  app.addHook('onRoute', (route) => {
    route.bodyLimit ??= node.options.maxPayload;
  });
  // Payloads are bytes whatever their content type: no JSON or text parsing.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const c = classify(err);
    if (c.internal) throttled(app.log).error({ err, reqId: req.id, url: logUrl(req.url) }, 'HTTP handler failed', 'HTTP handler failed', errorSite(err));
    // A thenable reply, never a promise unless awaited: nothing can reject here. Nosniff too where onRequest never ran.
    void reply.code(c.status).headers(NOSNIFF).send(c.body);
  });
  app.setNotFoundHandler((req, reply) => {
    // A thenable reply, never a promise unless awaited: nothing can reject here.
    void reply.code(404).send(errorBody('MB_ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });

  // Before anything can answer (the access check refuses in onRequest): every answer of the API, errors too.
  app.addHook('onRequest', async (_req, reply) => {
    reply.headers(NOSNIFF);
    // Arriving while the API closes: as fastify's return503OnClosing (off in startHttp's app), in the API's format.
    if (waiting.closing) return reply.code(503).header('connection', 'close').send(errorBody('MB_ERR_DRAINING', 'HTTP API closing'));
  });
  // Deny by default, decided on the matched route (access.ts); runs for the not-found handler too.
  app.addHook('onRequest', accessCheck(options.adminToken, options.scheme ?? 'http', prefix, node.authThrottle, options.loopbackHostsOnly === true));
  // Bodies not yet whole count in the node's input budget (SPEC 9.5), with its frames and messages.
  app.addHook('preParsing', bodyBudget(node.inputBudget));
  // Answers not written out yet are counted and bounded, their connections under the write deadline (reply-memory.ts).
  app.addHook('onSend', holdAnswers(node));
  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    const status = reply.statusCode;
    const rec = { method: req.method, url: logUrl(req.url), status, ms: Math.round(reply.elapsedTime * 100) / 100 };
    // 5xx once per status a minute (with the count held back): a Redis outage failed every publish, a line each.
    if (status >= 500) throttled(app.log).warn({ reqId: req.id, ...rec }, 'http', `http ${status}`);
    else if (req.method === 'GET' || req.method === 'HEAD' || UNCHARGED_REFUSALS.has(status)) req.log.debug(rec, 'http');
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
    return scrapes.get();
  });
  // The page calls the API under the same prefix.
  const html = dashboardHtml(prefix);
  const page = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
      .send(html);
  app.get('/', page);
  app.get('/dashboard', page);

  // The address the caller reached this machine at stands in for a wildcard bind address (views.ts clientAddress).
  app.get('/v1/node', async (req) => nodeView(ctx, req.socket.localAddress));
  app.get('/v1/cluster', async (req) => clusterView(ctx, req.socket.localAddress));
  // List views a page at a time (offset, limit ≤ MAX_PAGE): a list built whole grew with the node (views.ts).
  const pageOf = (q: { offset?: string; limit?: string }) => ({ offset: intParam(q.offset, 'offset', 0, 0, 0xffffffff), limit: intParam(q.limit, 'limit', DEFAULT_PAGE, 1, MAX_PAGE) });
  app.get<{ Querystring: { offset?: string; limit?: string } }>('/v1/connections', async (req) => {
    const { offset, limit } = pageOf(req.query);
    return connectionsView(node, offset, limit);
  });
  app.get<{ Querystring: { offset?: string; limit?: string } }>('/v1/subscriptions', async (req) => {
    const { offset, limit } = pageOf(req.query);
    return subscriptionsView(node, offset, limit);
  });
  app.get('/v1/stats', async () => statsView(node, history, slow));
  app.get('/v1/mesh', async (_req, reply) => {
    const call = waiting.begin(reply);
    try {
      const view = await mesh.collect(undefined, call.signal);
      call.signal.throwIfAborted();
      return view;
    } finally {
      call.end();
    }
  });
  app.get('/v1/stats/history', async () => historyView(history));
  app.get('/v1/workers', async (_req, reply) => {
    if (!options.workers) return { workers: [] };
    // Gathered over IPC (up to seconds): a waiting call, counted and bounded, given up when the caller goes.
    const call = waiting.begin(reply);
    try {
      return { workers: await untilAborted(options.workers(), call.signal) };
    } finally {
      call.end();
    }
  });
  registerPublishRoutes(app, { node, inbox, stats, requestTimeout, maxRequestTimeout, waiting });
  registerTraceRoutes(app, node, waiting);
};

/** Fastify's plugin metadata: needs fastify 5 (no fastify-plugin wrapper: the plugin is meant to stay encapsulated). */
Object.assign(meshbusHttp, { [Symbol.for('plugin-meta')]: { name: 'meshbus-http', fastify: '5.x' } });

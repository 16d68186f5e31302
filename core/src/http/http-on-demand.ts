import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClusterView } from '../cluster-view.js';
import type { ErrorCode } from '@meshbus/proto';
import { ConfigError } from '../config-error.js';
import { limitConnections } from '../listener-limits.js';
import { createListenerServer } from '../listener-timeouts.js';
import { HTTP_LISTENER, listenOn } from '../listen.js';
import type { MeshNode } from '../node.js';
import { errorBody } from './http-errors.js';
import { apiClientErrors } from './client-errors.js';
import { NOSNIFF } from './served-types.js';
import { checkHttpOptions, checkPluginOptions, httpConnectionLimits, httpLog, httpUrl, warnOpen, type HttpOptions, type HttpServer } from './http-options.js';
import { DEFAULT_HTTP_PORT } from './open-admin.js';
import { RateHistory } from './rate-history.js';
import { throttled } from '../told-recently.js';

/**
 * The HTTP API on its port with fastify, the plugin, the dashboard and
 * prom-client loaded on demand (issue #15: ~13 MB of RSS and ~100 ms of
 * start-up a node that nobody asks over HTTP does not pay).
 */
export interface OnDemandHttpServer {
  /** The port the API listens on. */
  readonly port: number;
  /** http://host:port */
  readonly url: string;
  /** The 1-second rate samples behind /v1/stats/history: sampled from start-up, loaded or not. */
  readonly history: RateHistory;
  /** The whole API once loaded (by the first request, load(), a cluster view or a worker's options); undefined before. */
  readonly loaded: HttpServer | undefined;
  /** Loads the API now if it is not yet (idempotent); resolves with it. */
  load(): Promise<HttpServer>;
  /** Sets (or replaces) the cluster view; a view loads the API (the dashboard's mesh stats answer other nodes). */
  attachCluster(view: ClusterView | undefined): void;
  /** Stops listening; requests waiting for replies fail with MB_ERR_DRAINING. */
  close(): Promise<void>;
}

/**
 * The HTTP API of `node` on a port of its own, as startHttp, except that
 * fastify and the plugin load on the first request (or at once when
 * `options` name a cluster, metrics labels, a metrics source or workers:
 * something outside answers through them before anyone asks over HTTP).
 * The port listens with the node's listener policy from the start; requests
 * that arrive while the API loads wait for it (the first one takes the load
 * time, ~100-200 ms), then every request is fastify's. Options are checked
 * now (ConfigError, as startHttp); the rate history samples from now. What
 * starts at the first request instead: /metrics histograms and process
 * series, the dashboard's slow-consumer log, the request inbox.
 */
export async function startHttpOnDemand(node: MeshNode, options: HttpOptions = {}): Promise<OnDemandHttpServer> {
  const port = options.port ?? DEFAULT_HTTP_PORT;
  const host = options.host ?? node.host;
  const refusal = checkHttpOptions(node, options);
  const { historySeconds } = checkPluginOptions({ ...options, node });

  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  let waiting: Array<[IncomingMessage, ServerResponse]> = [];
  let loaded: HttpServer | undefined;
  let loading: Promise<HttpServer> | undefined;
  let cluster = options.cluster;
  let closed = false;
  const server = createListenerServer(
    (req, res) => {
      if (handler) return handler(req, res);
      // Closed before anything loaded: as fastify answers while closing (return503OnClosing).
      if (closed) return answer(res, 503, 'MB_ERR_DRAINING');
      waiting.push([req, res]);
      load().catch(() => {}); // failures answered below, and logged (once a minute)
    },
    node.options.handshakeTimeout,
    options.tls,
    node.logger,
  );
  // Before the API loads too (fastify's handler is the same function: a socket is answered once).
  server.on('clientError', apiClientErrors(node.logger));
  // Bounded from the start: the idle port is as much a descriptor table for one host as the loaded API.
  limitConnections(server, httpConnectionLimits(options), node.options.handshakeTimeout, options.tls !== undefined);
  const history = new RateHistory(node.stats, 1000, historySeconds);

  const load = (): Promise<HttpServer> => {
    if (closed && !loading) return Promise.reject(new ConfigError('the HTTP API is closed'));
    loading ??= (async () => {
      const { mountHttp } = await import('./http-server.js');
      const m = await mountHttp(node, { ...options, cluster }, server, history);
      loaded = m.api;
      handler = m.handler;
      return m.api;
    })().then(
      (api) => {
        const queued = waiting;
        waiting = [];
        for (const [req, res] of queued) handler!(req, res);
        return api;
      },
      (e: unknown) => {
        // Once a minute (ThrottledLog): each request tries again, and anyone who reaches the port can send one.
        throttled(node.logger).error({ err: (e as Error).message }, 'http api failed to load');
        // The next request tries again; those waiting now get a 500.
        loading = undefined;
        const queued = waiting;
        waiting = [];
        for (const [, res] of queued) answer(res, 500, 'MB_ERR_INTERNAL', 'the HTTP API failed to load');
        throw e;
      },
    );
    return loading;
  };

  let bound: number;
  try {
    bound = await listenOn(server, port, host, HTTP_LISTENER);
  } catch (e) {
    history.close();
    throw e;
  }
  if (cluster || options.metricsLabels || options.metricsSource || options.workers) {
    try {
      await load();
    } catch (e) {
      history.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw e;
    }
  }
  // Logged once the API answers (loaded or loadable), as startHttp does.
  httpLog(node, options.logger)?.info({ host, port: bound }, 'http api listening');
  if (refusal !== undefined) warnOpen(node, host, bound, refusal);

  return {
    port: bound,
    url: httpUrl(options, host, bound),
    history,
    get loaded() {
      return loaded;
    },
    load,
    attachCluster(view) {
      cluster = view;
      if (loaded) loaded.attachCluster(view);
      else if (view && !closed) void load().then((api) => api.attachCluster(cluster), () => {});
    },
    async close() {
      if (closed) return;
      closed = true;
      if (loading) await loading.then((api) => api.close(), () => {});
      history.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** An error answer in the API's shape (`{ error: { code, num, message } }`) without fastify. */
function answer(res: ServerResponse, status: number, code: ErrorCode, message?: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', connection: 'close', ...NOSNIFF }).end(JSON.stringify(errorBody(code, message)));
}

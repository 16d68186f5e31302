import type { RequestListener, Server as NodeHttpServer } from 'node:http';
import Fastify, { LogController, type FastifyInstance, type FastifyReply } from 'fastify';
import type { MeshNode } from '../node.js';
import { ConfigError } from '../config-error.js';
import { limitConnections } from '../listener-limits.js';
import { createListenerServer } from '../listener-timeouts.js';
import { HTTP_LISTENER, listenError } from '../listen.js';
import { classify } from './http-errors.js';
import { apiClientErrors } from './client-errors.js';
import { DEFAULT_HTTP_PORT } from './open-admin.js';
import { checkHttpOptions, httpConnectionLimits, httpLogger, httpUrl, warnOpen, type HttpOptions, type HttpServer } from './http-options.js';
import { meshbusHttp, type MeshbusHttpApi } from './plugin.js';
import type { RateHistory } from './rate-history.js';

export type { HttpOptions, HttpServer } from './http-options.js';

/**
 * The HTTP API of `node` on a port of its own: a fastify app with the node's
 * listener policy (handshake timeout, TLS) and logger, the `meshbusHttp`
 * plugin registered at the root, listening. Throws ConfigError for bad
 * options, a port in use or an open API where it must not be open.
 */
export async function listenHttp(node: MeshNode, options: HttpOptions = {}): Promise<HttpServer> {
  const port = options.port ?? DEFAULT_HTTP_PORT;
  const host = options.host ?? node.host;
  const refusal = checkHttpOptions(node, options);
  const limits = httpConnectionLimits(options);
  const built = await buildHttpApp(node, options, (handler) => {
    const server = createListenerServer(handler, node.options.handshakeTimeout, options.tls, node.logger);
    limitConnections(server, limits, node.options.handshakeTimeout, options.tls !== undefined);
    return server;
  });
  const { app } = built;
  try {
    await app.listen({ port, host });
  } catch (e) {
    await app.close();
    throw listenError(e as NodeJS.ErrnoException, HTTP_LISTENER, host, port);
  }
  const addr = app.server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  app.log.info({ host, port: bound }, 'http api listening');
  if (refusal !== undefined) warnOpen(node, host, bound, refusal);
  let closed = false;
  return {
    ...apiOf(built),
    port: bound,
    url: httpUrl(options, host, bound),
    async close() {
      if (closed) return;
      closed = true;
      // The plugin fails waiting calls (MB_ERR_DRAINING, answered before the connections are cut: waiting-calls.ts) and stops the rate sampler.
      await app.close();
    },
  };
}

/**
 * The API on `server`, a listening server made by the caller (http-on-demand.ts),
 * fastify loaded now: resolves once the app is ready, with the request handler
 * to hand the server's requests to. `close()` closes the app, not the server.
 */
export async function mountHttp(
  node: MeshNode,
  options: HttpOptions,
  server: NodeHttpServer,
  history: RateHistory,
): Promise<{ api: HttpServer; handler: RequestListener }> {
  let handler: RequestListener | undefined;
  const built = await buildHttpApp(
    node,
    options,
    (h) => {
      handler = h;
      return server;
    },
    history,
  );
  await built.app.ready();
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : 0;
  let closed = false;
  const api: HttpServer = {
    ...apiOf(built),
    port: bound,
    url: httpUrl(options, options.host ?? node.host, bound),
    async close() {
      if (closed) return;
      closed = true;
      await built.app.close();
    },
  };
  return { api, handler: handler! };
}

interface BuiltApp {
  app: FastifyInstance;
  api: MeshbusHttpApi;
}

function apiOf({ app, api }: BuiltApp): Omit<HttpServer, 'port' | 'url' | 'close'> {
  return { app, stats: api.stats, registry: api.registry, history: api.history, attachCluster: api.attachCluster };
}

/** The fastify app with the plugin registered (not listening); closed again and ConfigError thrown when registration fails. */
async function buildHttpApp(node: MeshNode, options: HttpOptions, serverFactory: (handler: RequestListener) => NodeHttpServer, history?: RateHistory): Promise<BuiltApp> {
  const app = Fastify({
    // The listener handshake policy shared with the WebSocket gateway (listener-timeouts.ts).
    serverFactory,
    // One line format per process: a pino writing the node's line to the node's sink when jsonLogger made its logger (pinoOf).
    ...httpLogger(node, options.logger),
    // Our own onResponse hook logs requests (probes and dashboard polls at debug level).
    logController: new LogController({ disableRequestLogging: true }),
    // Topics travel in the path; let topic validation, not the router, refuse long ones.
    routerOptions: { maxParamLength: 16_384 },
    bodyLimit: node.options.maxPayload,
    forceCloseConnections: true,
    // Requests arriving while the API closes get the plugin's 503 MB_ERR_DRAINING (fastify's own is not in the API's format).
    return503OnClosing: false,
    // Requests the HTTP parser refused (431, 400...), in the API's error format (client-errors.ts).
    clientErrorHandler: apiClientErrors(node.logger),
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
      // Open only because it is on loopback (checkHttpOptions): answer this machine's names only (no DNS rebinding).
      loopbackHostsOnly: options.adminToken === undefined && options.insecureOpenAdmin !== true,
      cluster: options.cluster,
      requestTimeout: options.requestTimeout,
      maxRequestTimeout: options.maxRequestTimeout,
      maxWaiting: options.maxWaiting,
      historySeconds: options.historySeconds,
      history,
      scheme: options.tls ? 'https' : 'http',
      metricsLabels: options.metricsLabels,
      metricsSource: options.metricsSource,
      metricsMinInterval: options.metricsMinInterval,
      workers: options.workers,
      onApi: (a) => (api = a),
    });
  } catch (e) {
    await app.close();
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`cannot start the HTTP API: ${(e as Error).message}`);
  }
  return { app, api: api! };
}

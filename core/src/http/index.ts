// @meshbus/core/http: the HTTP API and dashboard. Mount it in your own fastify
// app with `app.register(meshbusHttp, { node, prefix })`, or let startHttp run
// it on a port of its own (fastify is loaded by startHttp's first call, or by
// the first request with startHttpOnDemand; the plugin itself needs only your
// app's fastify).
export { meshbusHttp } from './plugin-entry.js';
export type { MeshbusHttpOptions, MeshbusHttpApi } from './plugin.js';
export { startHttp } from './start-http.js';
export { startHttpOnDemand, type OnDemandHttpServer } from './http-on-demand.js';
export type { HttpOptions, HttpServer } from './http-options.js';
export { checkHttpOptions, checkPluginOptions } from './http-options.js';
export { isLoopbackHost, DEFAULT_HTTP_PORT } from './open-admin.js';
export { httpStatus, errorBody, HttpError, type ErrorBody } from './http-errors.js';
export { METRICS_CONTENT_TYPE, type HttpStats } from './metrics.js';
export { RateHistory, type RateSample } from './rate-history.js';
export { RequestInbox, type Reply, type DroppedReplies } from './inbox.js';
export { OPEN_ROUTES } from './access.js';

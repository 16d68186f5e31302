// @meshbus/core/http: the HTTP API and dashboard (loads fastify). Mount it in
// your own fastify app with `app.register(meshbusHttp, { node, prefix })`, or
// let startHttp run it on a port of its own.
export { meshbusHttp, type MeshbusHttpOptions, type MeshbusHttpApi } from './plugin.js';
export { startHttp, isLoopbackHost, DEFAULT_HTTP_PORT, type HttpOptions, type HttpServer } from './http-server.js';
export { httpStatus, errorBody, HttpError, type ErrorBody } from './http-errors.js';
export { renderMetrics, METRICS_CONTENT_TYPE, type HttpStats } from './metrics.js';
export { RateHistory, type RateSample } from './rate-history.js';
export { RequestInbox, type Reply, type DroppedReplies } from './inbox.js';
export { OPEN_ROUTES } from './access.js';

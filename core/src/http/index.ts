export { startHttp, DEFAULT_HTTP_PORT, type HttpOptions, type HttpServer } from './http-server.js';
export { httpStatus, errorBody, HttpError, type ErrorBody } from './http-errors.js';
export { renderMetrics, METRICS_CONTENT_TYPE, type HttpStats } from './metrics.js';
export { RateHistory, type RateSample } from './rate-history.js';
export { RequestInbox, type Reply, type DroppedReplies } from './inbox.js';
export { OPEN_ROUTES } from './access.js';

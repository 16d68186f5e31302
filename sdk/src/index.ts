/**
 * `@meshbus/sdk` for Node.js: the core client with TCP and WebSocket (`ws`)
 * transports. `connect()` here picks the transport from the URL scheme.
 */
export * from './core.js';
export { connect, nodeTransport, nodeTransports, type NodeConnectOptions } from './node.js';
export { injectTraceContext, loadOpenTelemetry, withTraceContext, type OpenTelemetryApi } from './trace-context.js';
export type { TlsClientOptions } from './tcp-transport.js';
export { TcpTransport } from './tcp-transport.js';
export { durable } from './durable.js';

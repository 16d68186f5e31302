export { MeshNode, startNode, type NodeHooks, type LocalPublish, type TraceHop } from './node.js';
export { ClientSession } from './client-session.js';
// Durability (ioredis, bullmq), the HTTP API (fastify) and the WebSocket gateway
// (ws) are subpath exports, '@meshbus/core/durable', '@meshbus/core/http' and
// '@meshbus/core/ws': importing the router never loads them.
export type { NodeExtension, ExtensionHost, ExtensionSession, ExtensionPublisher } from './node-extension.js';
export { DURABLE_FEATURES, logDurabilityOff, refuseWithoutRedis } from './durable/durability-off.js';
export { resolveDurable, DurableMatcher, type DurableOptions, type DurableTopic, type ResolvedDurable, type ResolvedTopicRule, type TopicDurability } from './durable/store-config.js';
export { RoutingTable, type Receivers, type GroupReceivers, type InterestChange, type DeliveryScope } from './routing-table.js';
export type { Subscriber, SubscriberKind, Subscription, SlowPolicy, DropTag, Throttled, EventSource } from './subscriber.js';
export type { Transport, TransportEvents } from './transport.js';
export { OutboundQueue } from './outbound-queue.js';
export { SourceThrottle, ReceiverWaiters } from './flow-control.js';
export { TcpTransport } from './tcp-transport.js';
export { resolveOptions, type NodeOptions, type ResolvedOptions } from './options.js';
export { ConfigError, MAX_TIMER_MS } from './config-error.js';
export { listenOn, listenError, ListenError, type ListenerName } from './listen.js';
export { jsonLogger, pinoOf, silentLogger, type Logger, type LogLevel } from './logger.js';
export type { NodeStats } from './stats.js';
export { randomId } from './ids.js';
export { TopicCounter } from './stats.js';
export type { ClusterView, PeerView, LinkView, LinkState } from './cluster-view.js';
export { OtlpExporter, parseTraceParent, hopSpanId, type OtlpOptions, type TraceParent } from './otlp-export.js';
export { hopName } from './trace-hop.js';
export { JwtVerifier, signHs256, type JwtKeys, type TokenClaims, type TopicRules } from './auth/jwt.js';
export { mintToken, type MintOptions } from './auth/token-mint.js';
export { Permissions, covers } from './auth/permissions.js';
export { AuthThrottle, addressKey, remoteAddress, type AuthThrottleOptions, type AuthPath } from './auth/auth-throttle.js';
export { TraceGuard } from './trace-guard.js';
export { loadTls, serverTlsOptions, type TlsConfig, type TlsFiles } from './tls-config.js';
export { tlsPort, isTlsRecord, TLS_ON_PLAIN } from './tls-port.js';
export { refuseConnection } from './listener-timeouts.js';
export { FlowEndpoint } from './flow-endpoint.js';
export { InternalSubscriber, type InternalSubscription, type InternalSubscribeOptions } from './internal-subscriber.js';
export { Connection, forwardedHeader, type ConnectionSettings, type ConnectionState } from './connection.js';
export { ForwardSlab } from './forward-slab.js';
export { freePort, portRange } from './free-port.js';
export { memoryNow } from './memory-now.js';
export { ToldRecently } from './told-recently.js';

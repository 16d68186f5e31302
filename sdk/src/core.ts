/**
 * The platform-free core of the meshbus SDK: the protocol client, codecs,
 * outbox, backoff and the WebSocket transport. Nothing here imports a Node
 * built-in; a browser or mobile entry adds its WebSocket and re-exports this.
 */
export { Client, connect, CLIENT_LANG, type ClientStats, type DropReason } from './client.js';
export { STATUS_BACKLOG } from './status-feed.js';
export { Msg } from './msg.js';
export { Subscription, type SubscribeOptions } from './subscription.js';
export type { DurableFeature } from './durable-api.js';
export type { AbortSignalLike, ConnectOptions, CoreConnectOptions, PublishOptions, RequestOptions, ServerInfo, Status, StatusType } from './options.js';
export { RawCodec, StringCodec, JsonCodec, MsgpackCodec, type Codec } from './codecs.js';
export { MemoryOutbox, entrySize, type Outbox, type OutboxEntry, type OutboxLimits } from './outbox.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { parseServer, ServerPool, DEFAULT_PORT, type ServerUrl, type Scheme } from './servers.js';
export type { Transport, TransportFactory } from './transport.js';
export { WsTransport, type WebSocketConstructor, type WebSocketLike, type WsTransportOptions } from './ws-transport.js';
export { Emitter } from './emitter.js';
export {
  MeshbusError,
  ClientError,
  SessionError,
  ProtocolError,
  StoreError,
  isMeshbusError,
  ERROR_CODES,
  type ErrorCode,
} from '@meshbus/proto';

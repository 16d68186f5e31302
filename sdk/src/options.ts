import type { BackoffOptions } from './backoff.js';
import type { Codec } from './codecs.js';
import type { DurableFeature } from './durable-api.js';
import type { Outbox, OutboxLimits } from './outbox.js';
import type { TransportFactory } from './transport.js';

export type { ClientStats, DropReason, ServerInfo, Status, StatusType } from './types.js';

/** What connect() uses of an AbortSignal (browsers, Node, React Native). */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface ConnectOptions {
  /** Client name shown in the node's connection list. */
  name?: string;
  /** Static bearer token sent in HELLO. */
  token?: string;
  /** Called before every connection attempt; its result is the HELLO token (refresh it here). */
  getToken?: () => string | undefined | Promise<string | undefined>;
  /** false: do not receive your own publishes. Default true. */
  echo?: boolean;
  /** Transport connect + handshake deadline, ms. Default 5000. */
  connectTimeout?: number;
  /** Reconnect after a lost connection. Default true. */
  reconnect?: boolean;
  /** Reconnect attempts before giving up (closing with MB_ERR_CONNECT_FAILED). Default Infinity; -1 (NATS's convention) is Infinity too. */
  maxReconnectAttempts?: number;
  /** Backoff between attempts (full jitter). Default base 250 ms, max 20 s. */
  reconnectBackoff?: BackoffOptions;
  /** Keep retrying (with backoff) when the first connection fails, instead of rejecting connect(). Default false. */
  waitOnFirstConnect?: boolean;
  /**
   * Gives up connect() when aborted (an AbortController's signal): the
   * attempts stop, nothing stays open, and connect() rejects with
   * MB_ERR_CONNECTION_CLOSED. Until connect() resolves the caller has no
   * client to close, so without it a `waitOnFirstConnect` connect() to a
   * node that never answers could only retry for ever (or until
   * `maxReconnectAttempts`). No effect once connected.
   */
  signal?: AbortSignalLike;
  /** Shuffle the server list once. Default false. */
  randomize?: boolean;
  /** Do not add the peers a node announces to the server list. Default false. */
  ignoreClusterPeers?: boolean;
  /** Ping when idle this long, ms. Default: the interval announced in WELCOME. */
  pingInterval?: number;
  /** Unanswered pings before the connection is declared dead. Default 2. */
  maxPingOut?: number;
  /** Deadline of a liveness probe after a wake-up (timers frozen), ms. Default 2000. */
  wakeTimeout?: number;
  /**
   * Where publishes made while disconnected wait: limits for the default
   * in-memory outbox, your own Outbox (e.g. persistent), or false to reject
   * such publishes with MB_ERR_CONNECTION_CLOSED.
   */
  outbox?: OutboxLimits | Outbox | false;
  /**
   * Bound on the bytes a connected client holds unsent (given to the
   * connection, not yet taken by the OS or the WebSocket), bytes: a publish,
   * request or reply that would pass it throws ClientError
   * MB_ERR_SEND_BUFFER_FULL, unless nothing waits (one event always goes).
   * `await client.whenWritable()` waits for room. Default 64 MiB (nats-server's
   * per-connection `max_pending`); Infinity: no bound.
   */
  maxPendingBytes?: number;
  /** Default request timeout, ms. Default 5000. */
  requestTimeout?: number;
  /**
   * Most ms a drain() lasts; past it the client closes as close() does and
   * drain() rejects with ClientError MB_ERR_TIMEOUT. Default 30,000 (as
   * nats.go's DrainTimeout); Infinity: none.
   */
  drainTimeout?: number;
  /** Default codec of `msg.decoded()`. Default JSON. */
  codec?: Codec;
  /**
   * The durable features (acked and delayed publish, `since` / `recover`,
   * durable queue settle): `durable`, exported by the `@meshbus/sdk/durable` entry.
   * The Node entry (`@meshbus/sdk`) passes it by default; the core, browser
   * and mobile entries leave it out unless given, so their bundles do not
   * carry it. Without it, those options throw ClientError MB_ERR_INVALID_ARGUMENT.
   */
  durable?: DurableFeature;
}

/** Options of the platform-free core: the caller supplies the transports. */
export interface CoreConnectOptions extends ConnectOptions {
  transport: TransportFactory;
}


export interface PublishOptions {
  headers?: Record<string, string>;
  /** Encode the payload with this codec (otherwise bytes as they are, strings as UTF-8). */
  codec?: Codec<never>;
  /**
   * Trace id, 16 random lowercase hex digits (nodes refuse other ids, SPEC 10.9): every node
   * the event passes through publishes a hop record on `_TRACE.<id>`, delivered only to the
   * connection that used the id first on the node where the event was published (subscribe
   * to `_TRACE.<id>`, then publish, on this client); another connection's use of the id there
   * is MB_ERR_PERMISSION_DENIED. Kept with an event that waits in the outbox.
   */
  trace?: string;
  /**
   * Ask the node to acknowledge: publish() returns a promise that resolves once the
   * node accepted the event (durable topics: once Redis has it, with its position)
   * and rejects on NACK (StoreError MB_ERR_STORE_UNAVAILABLE) or a lost connection.
   */
  ack?: boolean;
  /**
   * With `ack`, `delay` or `at`: ms to wait for the node's ACK once the event
   * is sent (not while it waits offline in the outbox). Past it the promise
   * rejects with ClientError MB_ERR_TIMEOUT: the node may still have stored
   * the event. Default 30,000 (a node NACKs a durable write it cannot make
   * after its `writeTimeoutMs`, 5,000 by default).
   */
  ackTimeout?: number;
  /** Delayed publish (durable topics): the node publishes it this many ms later. */
  delay?: number;
  /** Delayed publish at a wall-clock time (Date or ms since the epoch). */
  at?: Date | number;
}

export interface RequestOptions extends PublishOptions {
  /** ms; default the client's requestTimeout (5000). */
  timeout?: number;
  /** Codec used by the reply's `decoded()`. */
  replyCodec?: Codec;
}

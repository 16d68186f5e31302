import WebSocket from 'ws';
import { connect as coreConnect, type Client } from './client.js';
import { durable } from './durable.js';
import { loadOpenTelemetry, withTraceContext } from './trace-context.js';
import type { ConnectOptions } from './options.js';
import type { TransportFactory } from './transport.js';
import { TcpTransport, isIpHost, type TlsClientOptions } from './tcp-transport.js';
import { parseServer } from './servers.js';
import { optionsObject } from './option-checks.js';
import { checkKind } from './errors.js';
import type { WebSocketConstructor } from './ws-transport.js';
import { NodeWsTransport } from './node-ws-transport.js';
import { MAX_FRAME } from './frame-limits.js';

/**
 * Node transports: TCP for meshbus:// / tcp:// / host:port, TCP over TLS for
 * tls://, the `ws` package for ws:// and wss:// (with the same TLS settings).
 * `tlsNames`: host names a tls:// server reached by address may carry in its
 * certificate (connect() passes those of its tls:// servers; tcp-transport.ts).
 */
export function nodeTransports(tls: TlsClientOptions = {}, tlsNames: readonly string[] = [], wsDeflate = false): TransportFactory {
  const ws = webSocketWith({ ...tls, maxPayload: MAX_FRAME, perMessageDeflate: wsDeflate, closeTimeout: CLOSE_WAIT });
  // Buffers from `ws` as they are: 'arraybuffer' would copy each message (ws-transport.ts); message buffers reused (node-ws-transport.ts).
  return (server) => (server.scheme === 'tcp' || server.scheme === 'tls' ? new TcpTransport(tls, tlsNames) : new NodeWsTransport(ws, { binaryType: 'nodebuffer' }));
}

/**
 * How long close() waits for the node's answer to its WebSocket close frame
 * before the socket is destroyed: as long as TcpTransport waits for its end()
 * (`ws` waited 30 s, holding the Node process that long after close() on a
 * link that stopped answering, where TCP let it exit within 2 s).
 */
const CLOSE_WAIT = 2000;

let defaults: TransportFactory | undefined;
/** The default Node transports (system CAs for tls:// and wss://), made at first use (nothing of `ws` is touched at import). */
export const nodeTransport: TransportFactory = (server) => (defaults ??= nodeTransports())(server);

/**
 * A `ws` constructor with the client's settings: TLS for wss://, no message
 * larger than a frame the client reads (MAX_FRAME: `ws`'s default was 100
 * MiB), and no permessage-deflate unless `wsDeflate` (`ws` offered it by
 * default). A hostile node (or anyone on a ws:// path) that accepted the
 * offer sent three 90 MiB messages of zeros, ~90 KB each on the wire: the
 * client went from 64 to 348 MB of RSS (277 MB of ArrayBuffers) at each
 * connection, where over TCP the same bytes must be sent (now 105 MB, the
 * messages refused by size; 170 MB with `wsDeflate`, inflating stops at
 * MAX_FRAME).
 */
function webSocketWith(o: WebSocket.ClientOptions & { closeTimeout?: number }): WebSocketConstructor {
  class MeshbusWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, o);
    }
  }
  return MeshbusWebSocket as unknown as WebSocketConstructor;
}

/**
 * Connects to a meshbus node from Node.js, with the durable features
 * (acked publish, `since` / `recover`, durable queues) enabled.
 *
 *     const client = await connect('127.0.0.1:4480');
 */
export async function connect(servers: string | string[], options?: NodeConnectOptions): Promise<Client> {
  const { tls, openTelemetry, wsDeflate, ...rest } = optionsObject(options);
  checkKind('tls', tls, 'object');
  checkKind('openTelemetry', openTelemetry, 'boolean');
  checkKind('wsDeflate', wsDeflate, 'boolean');
  const names = tlsHostNames(servers);
  const [client, otel] = await Promise.all([
    coreConnect(servers, { transport: tls || names.length > 0 || wsDeflate ? nodeTransports(tls, names, wsDeflate === true) : nodeTransport, durable, ...rest }),
    openTelemetry === false ? undefined : loadOpenTelemetry(),
  ]);
  return otel ? withTraceContext(client, otel) : client;
}

/** Host names of the tls:// servers given (unparseable entries are left to connect() to refuse). */
function tlsHostNames(servers: string | string[]): string[] {
  const names = new Set<string>();
  for (const s of Array.isArray(servers) ? servers : [servers]) {
    try {
      const u = parseServer(s);
      if (u.scheme === 'tls' && !isIpHost(u.host)) names.add(u.host);
    } catch {
      /* connect() reports it */
    }
  }
  return [...names];
}

/** Options of the Node entry's `connect`. */
export interface NodeConnectOptions extends ConnectOptions {
  tls?: TlsClientOptions;
  /**
   * With `@opentelemetry/api` installed (an optional peer dependency), events
   * sent carry the active span's W3C trace context (`traceparent`,
   * `tracestate` headers, through the application's propagator). false: never.
   * Default true; without the package nothing is loaded and nothing changes.
   */
  openTelemetry?: boolean;
  /**
   * Offer permessage-deflate on ws:// and wss:// (a node's `--ws-deflate`).
   * Default false: a compressed message costs its sender a thousandth of
   * what it makes the client hold.
   */
  wsDeflate?: boolean;
}

import { STATUS_CODES, createServer, type RequestListener, type Server as HttpServer, type ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createHttpsServer } from 'node:https';
import { closeDropsHandshakes } from './port-sockets.js';
import { serverTlsOptions, type TlsConfig } from './tls-config.js';
import type { Logger } from './logger.js';
import { isTlsRecord } from '@meshbus/proto';
import { logTlsMisfit } from './tls-misfit-log.js';

/**
 * The one handshake policy of every HTTP-based listener of a node (the HTTP
 * API and the WebSocket gateway; the client TCP port applies the same
 * `handshakeTimeout` to HELLO in its session). With T the node's
 * `handshakeTimeout`:
 *
 * - TLS: the TLS handshake completes within T of the TCP accept.
 * - A request's headers (a WebSocket upgrade's included) are complete within
 *   T of the connection opening, or of the request's first byte on a
 *   keep-alive connection; else 408 and close.
 * - A whole request, body included, arrives within max(T, 30 s).
 * - A keep-alive connection idle for T after a response is closed.
 *
 * Node checks these deadlines on a timer every `connectionsCheckingInterval`
 * (T/4, between 50 ms and 1 s), so a connection is closed at most that much
 * after its deadline. The WebSocket gateway adds the HELLO deadline: T from
 * the TCP accept, not from the upgrade.
 */
export interface ListenerTimeouts {
  /** ms for request headers (Node `headersTimeout`). */
  headersTimeout: number;
  /** ms for the whole request (Node `requestTimeout`). */
  requestTimeout: number;
  /** ms a keep-alive connection may stay idle (Node `keepAliveTimeout`). */
  keepAliveTimeout: number;
  /** ms between deadline checks (Node `connectionsCheckingInterval`). */
  connectionsCheckingInterval: number;
  /** ms for the TLS handshake (tls.Server `handshakeTimeout`). */
  handshakeTimeout: number;
}

/** Shortest allowance for a whole request with its body, ms. */
export const MIN_REQUEST_TIMEOUT = 30_000;

/** The deadlines of every HTTP-based listener for a node whose `handshakeTimeout` is `handshakeMs`. */
export function listenerTimeouts(handshakeMs: number): ListenerTimeouts {
  return {
    headersTimeout: handshakeMs,
    requestTimeout: Math.max(handshakeMs, MIN_REQUEST_TIMEOUT),
    keepAliveTimeout: handshakeMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(handshakeMs / 4))),
    handshakeTimeout: handshakeMs,
  };
}

/**
 * An HTTP server (HTTPS with `tls`) that applies the listener policy
 * for `handshakeMs`. Used by the HTTP API (as fastify's serverFactory) and
 * the WebSocket gateway's own port, so both close slow handshakes alike.
 * With TLS, a plain HTTP request (http://, ws://) is logged at info on
 * `logger`: OpenSSL drops it without a byte, so the client only sees the
 * connection close (the Node SDK says "if it speaks TLS, use wss://").
 */
export function createListenerServer(handler: RequestListener, handshakeMs: number, tls?: TlsConfig, logger?: Logger): HttpServer {
  const t = listenerTimeouts(handshakeMs);
  const opts: ServerOptions = {
    headersTimeout: t.headersTimeout,
    requestTimeout: t.requestTimeout,
    keepAliveTimeout: t.keepAliveTimeout,
    connectionsCheckingInterval: t.connectionsCheckingInterval,
  };
  // An https.Server is an http.Server for everything the callers use (listen, upgrade, close).
  if (!tls) return createServer(opts, handler);
  const server = createHttpsServer({ ...serverTlsOptions(tls), ...opts, handshakeTimeout: t.handshakeTimeout }, handler);
  closeDropsHandshakes(server);
  // A listener changes nothing else: Node ends the socket of a failed handshake either way.
  server.on('tlsClientError', (e: NodeJS.ErrnoException, socket) => {
    if (e.code === 'ERR_SSL_HTTP_REQUEST') logTlsMisfit(logger, socket.remoteAddress, { remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'plain HTTP request on a TLS port refused: use https:// (wss:// for WebSocket)');
  });
  return server as unknown as HttpServer;
}

/**
 * Ends a connection the node refuses (full, draining, a refused WebSocket
 * upgrade) with `lastWords`, and destroys it `ms` later unless the other end
 * closed first. A refused connection is counted nowhere (not in
 * maxConnections, not by an HTTP server once upgraded), so one whose other
 * end never reads or closes held its descriptor for ever: past
 * maxConnections 2, 200 such were 202 sockets open on the node.
 */
export function refuseConnection(socket: Duplex, lastWords: string | Uint8Array, ms: number): void {
  socket.on('error', () => {});
  // Read (and drop) what it sends: else its close is never seen and a client that did close, as told,
  // still held a descriptor here for the whole `ms` (found by the HTTP port review).
  socket.resume();
  socket.end(lastWords);
  const timer = setTimeout(() => socket.destroy(), ms);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Statuses Node answers a request it cannot parse with (lib/_http_server.js socketOnError); 400 otherwise. */
const UNPARSED: Record<string, number> = { HPE_HEADER_OVERFLOW: 431, HPE_CHUNK_EXTENSIONS_OVERFLOW: 413, ERR_HTTP_REQUEST_TIMEOUT: 408 };

/** Node's own answer to a request it cannot parse: the status line alone. */
const nodeAnswer = (status: number): string => `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`;

/**
 * The one 'clientError' handler of a node's HTTP-based listeners (a request
 * Node's HTTP parser refused: headers over its limit, malformed, too slow):
 * logs (info) a TLS handshake sent to a plain port (a wss:// or https://
 * client: Node's parser finds no method in it), then writes `answer(status)`
 * with the status Node would send (431, 413, 408, else 400) unless a
 * response is under way on the connection, and closes it. Any 'clientError'
 * listener replaces Node's own answer: the WebSocket gateway's plain port
 * gives Node's (the default `answer`), the HTTP API its JSON error format
 * (http/client-errors.ts) on fastify's and the on-demand listener's server.
 * A socket already closed (two listeners on one server) is left alone.
 */
export function onUnparsedRequest(logger: Logger | undefined, answer: (status: number) => string = nodeAnswer): (e: Error & { code?: string; rawPacket?: unknown }, socket: Duplex) => void {
  return (e, socket) => {
    const s = socket as Socket & { _httpMessage?: { _headerSent?: boolean } };
    if (s.destroyed) return;
    if (logger && e.rawPacket instanceof Uint8Array && isTlsRecord(e.rawPacket)) {
      logTlsMisfit(logger, s.remoteAddress, { remote: `${s.remoteAddress}:${s.remotePort}` }, 'TLS handshake on a plain HTTP port refused: clients use ws:// (http://) here');
    }
    if (e.code !== 'ECONNRESET' && s.writable && !s._httpMessage?._headerSent) s.write(answer(UNPARSED[e.code ?? ''] ?? 400));
    s.destroy(e);
  };
}

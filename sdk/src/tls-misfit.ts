import { ClientError, hostPort } from '@meshbus/proto';
import type { ServerUrl } from './servers.js';

/**
 * A client and a port that disagree about TLS (a tcp:// URL for a node's
 * TLS port, tls:// for a plain one; ws:// and wss:// alike), said as such
 * rather than as "closed by peer" or OpenSSL's "wrong version number". Node
 * transports only (tcp-transport.ts, node-ws-transport.ts): the browser
 * bundle does not carry it, and a browser reports no TLS detail anyway.
 * Errors are ClientError MB_ERR_CONNECT_FAILED (the connection never
 * opened), the URL to use in the message.
 */

/** OpenSSL's errors for a first record that is not TLS: what a TLS client gets from a plain server. */
const NOT_TLS = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG']);

/** `server`'s URL with the other scheme: tcp <-> tls, ws <-> wss. */
function otherScheme(server: ServerUrl): string {
  const to = { tcp: 'tls', tls: 'tcp', ws: 'wss', wss: 'ws' }[server.scheme];
  return server.href.replace(/^[a-z]+:/, `${to}:`);
}

/** True when `chunk` starts an HTTP/1 response ("HTTP/1.1 400 ..."): no meshbus frame starts so (SPEC 2). */
export function isHttpResponse(chunk: Uint8Array): boolean {
  return chunk.length >= 5 && chunk[0] === 0x48 && chunk[1] === 0x54 && chunk[2] === 0x54 && chunk[3] === 0x50 && chunk[4] === 0x2f;
}

/** A TCP connection got an HTTP response: the port is an HTTP API's or a WebSocket gateway's, not a client port. */
export function speaksHttp(server: ServerUrl): ClientError {
  const ws = `${server.scheme === 'tls' ? 'wss' : 'ws'}://${server.href.replace(/^[a-z]+:\/\//, '')}`;
  return new ClientError(
    'MB_ERR_CONNECT_FAILED',
    `${server.href}: this port speaks HTTP (a node's HTTP API or WebSocket gateway), not the meshbus protocol: connect to the node's client port (4480 by default), or to a WebSocket gateway with ${ws}`,
  );
}

/** A WebSocket upgrade answered 400: what a meshbus client or cluster port answers an HTTP request with. */
export function notAGateway(server: ServerUrl, cause: Error): ClientError {
  return new ClientError(
    'MB_ERR_CONNECT_FAILED',
    `${server.href}: the server answered the WebSocket upgrade with HTTP 400 (a meshbus client or cluster port does): WebSocket clients connect to a node's gateway (meshbus start --ws-port, 8481 by default); this port may take ${server.scheme === 'wss' ? 'tls' : 'tcp'}://${hostPort(server.host, server.port)}`,
    { cause },
  );
}

/** A plain connection got a TLS record: the server speaks TLS on this port. */
export function speaksTls(server: ServerUrl): ClientError {
  return new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: the server speaks TLS on this port: connect with ${otherScheme(server)}`);
}

/** The TLS connect to `server` failed with `e`: a ClientError naming the plain URL when OpenSSL says the server does not speak TLS, else undefined. */
export function notTls(server: ServerUrl, e: unknown): ClientError | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  // node:tls sets the OpenSSL code; a failed write (ws sends its upgrade request at once) is EPROTO with OpenSSL's text.
  if (!(typeof code === 'string' && NOT_TLS.has(code)) && !/wrong version number|packet length too long/.test(String((e as Error | undefined)?.message))) return undefined;
  return new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: the server does not speak TLS on this port: connect with ${otherScheme(server)}`, { cause: e });
}

/**
 * A plain connection the server closed without sending a byte: no meshbus
 * node does that (it answers with an ERROR), a TLS server given plain bytes
 * does (OpenSSL sends no alert for a first record that is not TLS).
 */
export function closedUnanswered(server: ServerUrl): string {
  return `${server.href}: closed by the server before it sent anything (if it speaks TLS on this port, connect with ${otherScheme(server)})`;
}

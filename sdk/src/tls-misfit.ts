import { ClientError } from '@meshbus/proto';
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

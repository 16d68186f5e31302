import { createServer, type Server, type Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';

/**
 * What a client that did not start with a TLS handshake on a TLS client port
 * is told, in an ERROR MB_ERR_HANDSHAKE_REQUIRED (the TLS handshake is the
 * one required first): "frame sent before the handshake: this port speaks
 * TLS: connect with tls://".
 */
export const PLAIN_ON_TLS = 'this port speaks TLS: connect with tls://';

/** The detail of the ERROR (MB_ERR_BAD_MAGIC) a plain port answers a TLS handshake with (connection.ts). */
export const TLS_ON_PLAIN = 'TLS handshake on a plain port: this port does not speak TLS';

/** First byte of a TLS handshake record (a ClientHello), RFC 8446 5.1: content type 22. */
const TLS_HANDSHAKE = 0x16;

/**
 * The listener of a TLS port that tells a client speaking the port's plain
 * protocol what is wrong. A tls.Server given a plain meshbus HELLO (or any
 * bytes that are no TLS record) drops the connection without a byte
 * (OpenSSL sends no alert for a first record that is not TLS), so a tcp://
 * client saw only "closed by peer". Here a plain net.Server reads the first
 * bytes: a TLS handshake record goes to `tls` as its connection (the bytes
 * put back: TLSSocket reads what the socket already holds, so the TLS
 * handshake is the one tls.Server always did); anything else goes to
 * `plain`, which answers in the port's plain protocol. The TLS handshake
 * costs one read callback more than before (the first bytes reach JS, then
 * OpenSSL): 356 vs 369 SDK connects (TLS handshake, HELLO/WELCOME, close)
 * per second one after another, -3.5% (5 alternating rounds, medians, load
 * average 2 on 2 cores); what flows after the handshake is not touched.
 *
 * `o.waitMs`: a connection that sends nothing within it is destroyed (and
 * `o.silent` called); the TLS server's own handshakeTimeout runs after.
 * `o.admit`, when given, sees each TCP connection first (false: it was
 * refused, and destroyed by admit): the TLS server's own 'connection'
 * listeners run again at the hand-off, so none may be used for that.
 */
export function tlsPort(tls: TlsServer, plain: (socket: Socket) => void, o: { waitMs: number; silent: () => void; admit?: (socket: Socket) => boolean }): Server {
  return createServer({ noDelay: true }, (socket) => {
    if (o.admit && !o.admit(socket)) return;
    // An error before the first byte (a reset) must not be unhandled; after the hand-off the owner has its own.
    socket.on('error', () => socket.destroy());
    socket.setTimeout(o.waitMs, () => {
      o.silent();
      socket.destroy();
    });
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) tls.emit('connection', socket);
      else plain(socket);
    });
  });
}

import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { errorFrame } from '@meshbus/proto';
import { refuseConnection } from './listener-timeouts.js';
import { PLAIN_ON_TLS, tlsPort } from './tls-port.js';
import { serverTlsOptions } from './tls-config.js';
import { logTlsMisfit } from './tls-misfit-log.js';
import type { Logger } from './logger.js';
import type { NodeStats } from './stats.js';
import type { ResolvedOptions } from './options.js';

/**
 * The server of a node's client port: plain TCP, or TLS when `options.tls`
 * is set. On a TLS port a plain (tcp://) client is told in a frame it reads
 * (MB_ERR_HANDSHAKE_REQUIRED, tls-port.ts) and logged once per host; a
 * failed TLS handshake never becomes a session. Both count in
 * `stats.connectionsRefused`. `accept` gets every other connection.
 */
export function clientServer(options: ResolvedOptions, stats: NodeStats, logger: Logger, accept: (s: Socket) => void): Server {
  const tls = options.tls;
  if (!tls) return createServer({ noDelay: true }, accept);
  const secure = createTlsServer({ ...serverTlsOptions(tls), noDelay: true }, accept);
  secure.on('tlsClientError', () => stats.connectionsRefused++);
  const refusePlain = (socket: Socket): void => {
    stats.connectionsRefused++;
    logTlsMisfit(logger, socket.remoteAddress, { remote: `${socket.remoteAddress}:${socket.remotePort}` }, `plain connection on the TLS client port refused: ${PLAIN_ON_TLS}`);
    refuseConnection(socket, errorFrame('MB_ERR_HANDSHAKE_REQUIRED', 0, PLAIN_ON_TLS), options.drainTimeout);
  };
  return tlsPort(secure, refusePlain, { waitMs: options.handshakeTimeout, silent: () => stats.connectionsRefused++ });
}

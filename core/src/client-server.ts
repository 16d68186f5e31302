import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { errorFrame } from '@meshbus/proto';
import { refuseConnection } from './listener-timeouts.js';
import { PLAIN_ON_TLS, tlsPort } from './tls-port.js';
import { serverTlsOptions } from './tls-config.js';
import { logTlsMisfit } from './tls-misfit-log.js';
import { OpenConnections } from './listener-limits.js';
import { PortSockets } from './port-sockets.js';
import { addressKey } from './auth/auth-throttle.js';
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
  let sockets: PortSockets | undefined;
  const server = tcpOrTls(options, stats, logger, (s) => {
    sockets?.owned(s);
    accept(s);
  });
  sockets = new PortSockets(server);
  portSockets.set(server, sockets);
  return server;
}

/** The sockets of each client port that are no session (yet): closeClientPort destroys them. */
const portSockets = new WeakMap<Server, PortSockets>();

/**
 * Closes a client port and destroys every socket of it that is no session
 * (yet): a TLS handshake under way, a first byte awaited (`all`: every
 * socket, sessions and refused connections being told why included; for
 * node.close(), which drops every connection at once). Sessions are
 * otherwise the node's to end (stop() drains them). Resolves once the port
 * is closed (its sessions' sockets closed too). Before, node.close() waited
 * for a TLS handshake left half-way (Node's 120 s handshake timeout, and the
 * socket of a failed handshake was never destroyed), and node.stop() still
 * waited for one, up to the node's handshakeTimeout.
 */
export function closeClientPort(server: Server, all = false): Promise<void> {
  return portSockets.get(server)!.close(all);
}

function tcpOrTls(options: ResolvedOptions, stats: NodeStats, logger: Logger, accept: (s: Socket) => void): Server {
  const tls = options.tls;
  if (!tls) return createServer({ noDelay: true }, accept);
  // The node's handshakeTimeout, as on every other listener (Node's default is 120 s), counted from the first TLS byte.
  const secure = createTlsServer({ ...serverTlsOptions(tls), noDelay: true, handshakeTimeout: options.handshakeTimeout }, accept);
  secure.on('tlsClientError', (_e, socket) => {
    stats.connectionsRefused++;
    // With a listener Node leaves the socket of a failed (or timed out) handshake open.
    socket.destroy();
  });
  const refusePlain = (socket: Socket): void => {
    stats.connectionsRefused++;
    logTlsMisfit(logger, socket.remoteAddress, { remote: `${socket.remoteAddress}:${socket.remotePort}` }, `plain connection on the TLS client port refused: ${PLAIN_ON_TLS}`);
    refuseConnection(socket, errorFrame('MB_ERR_HANDSHAKE_REQUIRED', 0, PLAIN_ON_TLS), options.drainTimeout);
  };
  return tlsPort(secure, refusePlain, { waitMs: options.handshakeTimeout, silent: () => stats.connectionsRefused++, admit: tlsAdmission(options, stats) });
}

/**
 * The TLS client port's bound on its TCP connections, handshakes under way
 * included: `maxConnectionsPerIp` per host (as sessions are counted) and
 * `maxConnections` in all, past which a connection is destroyed before any
 * TLS work. Sessions are bounded by the node once their handshake is done;
 * before, a connection was counted nowhere until then: one host holding
 * thousands of TLS handshakes at a time (each up to handshakeTimeout, and
 * each with OpenSSL's state) was bounded only by the process's descriptors.
 */
function tlsAdmission(options: ResolvedOptions, stats: NodeStats): (socket: Socket) => boolean {
  const open = new OpenConnections(options);
  return (socket) => {
    const host = addressKey(socket.remoteAddress ?? '?');
    if (open.full(host)) {
      stats.connectionsRefused++;
      socket.destroy();
      return false;
    }
    open.count(socket, host);
    return true;
  };
}

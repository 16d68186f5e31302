import type { Server, Socket } from 'node:net';

/**
 * The sockets a listener accepted that no owner took yet: a TLS handshake
 * under way, a first byte awaited (tls-port.ts), a refused connection being
 * told why. `close()` closes the listener and destroys those, so a stop
 * does not wait for them: server.close() resolves only once every socket
 * the server accepted has closed, and such a socket closes only at its own
 * deadline (the handshake timeout, the node's or the cluster's: seconds,
 * Node's default 120 s) or when the other end goes. A socket that became a
 * session or a peer link (`owned`) is its owner's to close, gracefully;
 * `close(true)` destroys those too (an abrupt stop).
 *
 * Keyed by the remote address and port: a TLSSocket, which is what an owner
 * gets, reports those of the TCP socket the listener accepted under it.
 */
export class PortSockets {
  /** Every socket accepted and open, by key, and whether an owner took it. */
  private readonly open = new Map<string, { socket: Socket; owned: boolean }>();

  constructor(private readonly server: Server) {
    // First: the server's own listener (made with it) may hand the socket to its owner at once.
    server.prependListener('connection', (socket: Socket) => {
      const key = socketKey(socket);
      const entry = { socket, owned: false };
      this.open.set(key, entry);
      socket.once('close', () => {
        if (this.open.get(key) === entry) this.open.delete(key);
      });
    });
  }

  /** `socket` (or the TLS socket over one the listener accepted) has an owner now, which closes it. */
  owned(socket: Socket): void {
    const entry = this.open.get(socketKey(socket));
    if (entry) entry.owned = true;
  }

  /**
   * Stops listening and destroys every socket without an owner (`all`:
   * every socket); resolves once the listener closed, which waits for the
   * owned sockets left to close too.
   */
  close(all = false): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.drop(all);
    return closed;
  }

  /** Destroys every socket without an owner (`all`: every socket). */
  drop(all = false): void {
    for (const { socket, owned } of [...this.open.values()]) if (all || !owned) socket.destroy();
  }
}

function socketKey(s: Socket): string {
  return `${s.remoteAddress ?? '?'}|${s.remotePort ?? 0}`;
}

/**
 * Makes `server.close()` of a TLS server destroy the sockets still in their
 * TLS handshake (not yet a 'secureConnection'): whoever closes it (fastify's
 * app.close(), the WebSocket gateway, the on-demand HTTP API) would
 * otherwise wait for them up to the handshake timeout, as Node's
 * closeAllConnections() knows only the connections HTTP has seen. Called
 * before any 'connection' listener wraps the server's (listener-limits.ts).
 */
export function closeDropsHandshakes(server: Server): void {
  const sockets = new PortSockets(server);
  server.on('secureConnection', (s: Socket) => sockets.owned(s));
  const close = server.close;
  server.close = function (this: Server, cb?: (err?: Error) => void) {
    sockets.drop();
    return close.call(this, cb);
  };
}

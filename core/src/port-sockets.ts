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
 * One Set of sockets and a shared 'close' listener that finds its owner on
 * the socket (as `ws` does): before, a Map keyed by `address|port` with an
 * entry object and a `once('close')` closure per socket cost every client
 * connection ~300 B of heap. An owner of a TLS port gets the TLSSocket
 * over the socket accepted: that one is its `_parent` (Node's TLSSocket,
 * whether a tls.Server or tls-port.ts handed the socket to TLS).
 */
export class PortSockets {
  /** Every socket accepted and open. */
  private readonly open = new Set<Socket>();

  constructor(private readonly server: Server) {
    // First: the server's own listener (made with it) may hand the socket to its owner at once.
    server.prependListener('connection', (socket: Socket) => {
      this.open.add(socket);
      (socket as Tracked)[PORT] = this;
      socket.on('close', forget);
    });
  }

  /** `socket` (or the TLS socket over one the listener accepted) has an owner now, which closes it. */
  owned(socket: Socket): void {
    const s = socket as Tracked;
    const accepted = s[PORT] === this ? s : s._parent;
    if (accepted?.[PORT] === this) accepted[OWNED] = true;
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
    for (const socket of [...this.open]) if (all || (socket as Tracked)[OWNED] !== true) socket.destroy();
  }

  /** `socket` closed. */
  forget(socket: Socket): void {
    this.open.delete(socket);
  }
}

const PORT = Symbol('meshbus.portSockets');
const OWNED = Symbol('meshbus.owned');
type Tracked = Socket & { [PORT]?: PortSockets; [OWNED]?: boolean; _parent?: Tracked | null };

/** The one 'close' listener of every socket a PortSockets tracks. */
function forget(this: Socket): void {
  (this as Tracked)[PORT]?.forget(this);
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

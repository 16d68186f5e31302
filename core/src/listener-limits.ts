import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server, Socket } from 'node:net';
import { rawErrorAnswer } from './http/http-errors.js';
import { addressKey } from './auth/auth-throttle.js';
import { refuseConnection } from './listener-timeouts.js';
import { HostCounts } from './host-counts.js';

/**
 * Bounds on the connections an HTTP listener holds open, and on what one of
 * them can make it hold (the HTTP API's port). Without them one host was limited only by the process's file
 * descriptors: idle keep-alive connections that each send a request every
 * handshakeTimeout/2 stay open for ever, and at the descriptor limit the
 * node accepted and dropped every client on its client port as well (with
 * a 1,024-descriptor limit, 1,002 such connections from one unauthenticated
 * host were enough; at 20,000, ~19,600 and ~230 MB of RSS).
 */
export interface ConnectionLimits {
  /** Connections open at once, every host together. */
  maxConnections: number;
  /** Connections open at once from one host (an IPv4 address or an IPv6 /64, as the node's client port counts). */
  maxConnectionsPerIp: number;
  /**
   * Requests one connection may have made whose answers are not written out
   * yet (HTTP/1.1 pipelining): past it the connection is closed. Node parses
   * every request of what it has read (up to 64 KiB) before it stops reading
   * from a connection whose answers wait, and keeps each answer in memory
   * until the other end reads it, which it may never do: 20,000 pipelined
   * GET /metrics (700 KB) on one connection that never read held ~12 MB of
   * heap for as long as it stayed open, 11 such ~130 MB.
   */
  maxPipelined: number;
}

/**
 * Applies `limits` to `server` (an http.Server or https.Server, not
 * listening yet): a connection past a bound is refused before the HTTP
 * server (or TLS) sees it: over plain HTTP answered
 * `503 MB_ERR_TOO_MANY_CONNECTIONS` with `Connection: close`, over TLS
 * closed unanswered (nothing can be said before a handshake the node will
 * not spend CPU on), and destroyed `lingerMs` later if the other end keeps
 * it open; while maxConnections refused ones linger so, the next ones are
 * closed unanswered at once (the listener holds at most twice
 * maxConnections descriptors, whatever the rate of connections). A refused
 * connection is not counted in the bounds; an admitted one is until it
 * closes, or with `releaseOnUpgrade` until it upgrades (the WebSocket
 * gateway's port: its sessions are bounded by the node, which refuses them
 * with its own close codes). Adds an 'upgrade' listener only then (with
 * one, Node no longer answers an upgrade request as a plain request).
 */
export function limitConnections(server: Server, limits: ConnectionLimits, lingerMs: number, tls: boolean, releaseOnUpgrade = false): void {
  limitPipelining(server, limits.maxPipelined);
  const open = new OpenConnections(limits);
  /** Refused connections waiting for their 503 to be read (at most maxConnections; past it, closed at once). */
  let lingering = 0;
  /** How to uncount an admitted socket when it upgrades: it is no longer the HTTP server's (the WebSocket gateway's sessions are bounded by the node). */
  const upgraded = new WeakMap<object, () => void>();
  // The HTTP (or TLS) server's own 'connection' listeners, registered by its constructor: they now run only for admitted sockets.
  const accept = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    const host = addressKey(socket.remoteAddress ?? '?');
    const full = open.full(host);
    if (full) {
      // A refusal that lingers holds a descriptor: one host opening connections as fast as it could and
      // never closing them had ~9,600 refused ones open on the node at once (each kept lingerMs).
      if (tls || lingering >= limits.maxConnections) return void socket.destroy();
      lingering++;
      socket.once('close', () => lingering--);
      // refuseConnection reads (and drops) what it sends, so its close frees the descriptor before lingerMs.
      refuseConnection(socket, full === 'all' ? refusal('the HTTP listener', limits.maxConnections) : refusal(`host ${host}`, limits.maxConnectionsPerIp), lingerMs);
      return;
    }
    const release = open.count(socket, host);
    if (releaseOnUpgrade) upgraded.set(socket, release);
    for (const l of accept) l.call(server, socket);
  });
  if (releaseOnUpgrade) server.on('upgrade', (_req: IncomingMessage, socket: Socket) => upgraded.get(socket)?.());
}

/**
 * The connections a listener holds open, in all and per host (addressKey),
 * against `maxConnections` and `maxConnectionsPerIp`: the HTTP listeners'
 * bound (limitConnections) and the TLS client port's, handshakes included.
 */
export class OpenConnections {
  private readonly perHost = new HostCounts();
  private total = 0;

  constructor(private readonly limits: { maxConnections: number; maxConnectionsPerIp: number }) {}

  /** The bound a new connection of `host` would pass: 'all', 'host', or undefined when it may be counted. */
  full(host: string): 'all' | 'host' | undefined {
    if (this.total >= this.limits.maxConnections) return 'all';
    return this.perHost.get(host) >= this.limits.maxConnectionsPerIp ? 'host' : undefined;
  }

  /** Counts `socket` of `host` until it closes; the returned release uncounts it sooner (once). */
  count(socket: Socket, host: string): () => void {
    this.total++;
    this.perHost.add(host, 1);
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      this.total--;
      this.perHost.add(host, -1);
    };
    socket.once('close', release);
    return release;
  }
}

/** The raw 503 a refused plain-HTTP connection gets (the API's error format, http-errors.ts). */
function refusal(who: string, bound: number): string {
  return rawErrorAnswer(503, 'MB_ERR_TOO_MANY_CONNECTIONS', `${who} has ${bound} HTTP connections open: close one first`);
}

/**
 * Closes a connection with more than `max` requests whose answers are not
 * written out (a response counts until its last byte has left for the
 * kernel, or it is closed): the requests past it, and the rest of what was
 * read with them, reach no handler and no answer is kept for them.
 */
function limitPipelining(server: Server, max: number): void {
  const waiting = new WeakMap<Socket, number>();
  // The request handler the HTTP server was made with (fastify's, or the on-demand listener's).
  const handle = server.listeners('request') as Array<(req: IncomingMessage, res: ServerResponse) => void>;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    if (socket.destroyed) return;
    const n = (waiting.get(socket) ?? 0) + 1;
    if (n > max) return void socket.destroy();
    waiting.set(socket, n);
    let done = false;
    const answered = (): void => {
      if (done) return;
      done = true;
      waiting.set(socket, (waiting.get(socket) ?? 1) - 1);
    };
    res.once('finish', answered);
    res.once('close', answered);
    for (const l of handle) l.call(server, req, res);
  });
}

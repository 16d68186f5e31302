import type { TlsConfig } from './tls-config.js';
import type { IncomingMessage, ServerResponse, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { PerMessageDeflateOptions, WebSocket, WebSocketServer } from 'ws';
import { ERROR_CODES, errorFrame, hostPort, type ErrorCode } from '@meshbus/proto';
import { ConfigError, MAX_TIMER_MS } from './config-error.js';
import type { MeshNode } from './node.js';
import { wsCloseCode } from './ws-close-codes.js';
import { WsTransport } from './ws-transport.js';
import { limitConnections } from './listener-limits.js';
import { rawErrorAnswer } from './http/http-errors.js';
import { createListenerServer, onUnparsedRequest, refuseConnection } from './listener-timeouts.js';
import { listenOn } from './listen.js';
import { ToldRecently, throttled } from './told-recently.js';
import { isThisMachineName } from './loopback.js';

/** Why a page's upgrade was refused, in the 403's body: what to change, not the origin (the log has it). */
const ORIGIN_LOOPBACK_ONLY = "a page from another site: this node asks clients for no token, so it takes pages from this machine only (start it with --ws-origins <the page's origin>)";
const ORIGIN_NOT_LISTED = "the page's origin is not in this node's --ws-origins";
/** Plain requests a connection to the gateway's port may have unanswered (only a 426 to give them). */
const WS_MAX_PIPELINED = 8;

/** Default port of the WebSocket gateway of `meshbus start`. */
export const DEFAULT_WS_PORT = 8481;

export interface WsGatewayOptions {
  /** Own listener port (0 picks a free one). Ignored when `server` is given. Default 8481. */
  port?: number;
  /** Own listener interface. Default: the node's client host. */
  host?: string;
  /**
   * Mount on an existing HTTP server (e.g. the HTTP API) instead of listening:
   * the gateway takes the upgrade requests for `path` and leaves other requests alone.
   */
  server?: HttpServer;
  /** On its own port, serve wss:// with this certificate. Ignored when `server` is given (mount on an HTTPS server instead). */
  tls?: TlsConfig;
  /** Request path accepted. Default '/ws' when mounted; any path on the gateway's own port. */
  path?: string;
  /**
   * Origin allow-list (the `Origin` header browsers send): exact origins such as
   * 'https://app.example.com', or '*' (any). Absent or empty: any origin on a
   * node that requires client credentials (`token` or `jwt`: a page gets
   * nothing without one); on a node that requires none, only pages served
   * from this machine (`localhost`, `*.localhost`, `127.x.x.x`, `[::1]`):
   * any other site's page could otherwise subscribe to `>` and publish
   * through its visitor's browser (cross-site WebSocket hijacking; the HTTP
   * API refuses foreign Origins likewise). A request without an Origin
   * header (not a browser) is always accepted; auth is the token in HELLO.
   */
  origins?: string[];
  /** Largest WebSocket message, bytes (ws `maxPayload`; closes with 1009 past it). Default: the node's largest frame + 64 KiB. */
  maxPayload?: number;
  /** permessage-deflate: false (default: frames are already compact and compression costs CPU per message), true, or ws's options. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /** WebSocket ping period, ms: a ws-level ping when nothing was received for that long; a connection that received nothing (no pong, no message) since the previous ping is closed (the shared liveness rule, proto Liveness). 0: off. Default 30,000. */
  pingInterval?: number;
  /**
   * The ws:// or wss:// URL clients reach this gateway at, when not its own
   * address: behind a TLS proxy, a load balancer or NAT (NodeHooks.wsUrl: the
   * cluster gives it to other nodes' WebSocket clients). Default: on its own
   * port, ws(s)://host:port/path; mounted, none.
   */
  advertise?: string;
}

/** Longest advertised URL peers accept (cluster peer-info.ts MAX_CLIENT_URL). */
const MAX_ADVERTISED_URL = 256;

/** The problem with a WebSocket URL to advertise, or undefined when it is fine (peers refuse a link whose ws field breaks their rule). */
export function wsUrlProblem(url: string): string | undefined {
  if (url.length > MAX_ADVERTISED_URL || /[\s\p{C}]/u.test(url)) return `not a URL of at most ${MAX_ADVERTISED_URL} printable characters`;
  if (!/^wss?:\/\//i.test(url)) return 'not a ws:// or wss:// URL';
  try {
    if (new URL(url).hostname === '') return 'a URL without a host';
  } catch {
    return 'not a ws:// or wss:// URL';
  }
  return undefined;
}

/**
 * The WebSocket gateway of a node: browsers and mobile apps connect over
 * WebSocket and get exactly what TCP clients get (SPEC §2: the same frames in
 * binary messages). Each connection is a WsTransport attached to the node as a
 * ClientSession, so handshake, auth, limits, routing and the slow-consumer
 * policy are the TCP ones. Listens on its own port or mounts on an HTTP server.
 * On its own port the upgrade headers are due within the node's
 * handshakeTimeout of the TCP accept (listener-timeouts.ts), and HELLO within
 * that same deadline whether mounted or not. Connections end with the close
 * code of their error (wsCloseCode, SPEC §2).
 */
export class WsGateway {
  /** ws's server, made by the first upgrade (`ws` is loaded then: issue #15, ~3 MB of RSS an idle gateway does not hold). */
  private wss: Promise<WebSocketServer> | undefined;
  /** The same once made: later upgrades go to it directly. */
  private wssReady: WebSocketServer | undefined;
  private readonly http: HttpServer;
  private readonly owned: boolean;
  private readonly path: string | undefined;
  private readonly origins: Set<string> | undefined;
  /** No allow-list on a node that asks clients for no credential: browsers from this machine only (WsGatewayOptions.origins). */
  private readonly loopbackPagesOnly: boolean;
  private readonly compress: boolean;
  private readonly transports = new Set<WsTransport>();
  /** When each socket was accepted (TLS: when its handshake ended; keep-alive: its last answer): HELLO is due handshakeTimeout after it. */
  private readonly acceptedAt = new WeakMap<object, number>();
  private pinger: ReturnType<typeof setInterval> | undefined;
  private boundPort = 0;
  /** The URL clients reach this gateway at, on its own port (NodeHooks.wsUrl). */
  private url: string | undefined;
  private closed = false;
  /** Upgrades refused (origin, closed gateway) and the addresses told about recently. */
  private originRefusals = 0;
  private readonly refusalsTold = new ToldRecently(5 * 60_000);

  constructor(
    private readonly node: MeshNode,
    private readonly options: WsGatewayOptions = {},
  ) {
    const o = options;
    if (o.port !== undefined && !(Number.isInteger(o.port) && o.port >= 0 && o.port < 65536)) throw new ConfigError(`ws port must be 0..65535, got ${o.port}`);
    if (o.maxPayload !== undefined && !(Number.isInteger(o.maxPayload) && o.maxPayload > 0)) throw new ConfigError(`ws maxPayload must be a positive integer`);
    if (o.path !== undefined && !o.path.startsWith('/')) throw new ConfigError(`ws path must start with "/", got ${o.path}`);
    // The ping timer's period: past the longest timer it fires every 1 ms.
    if (o.pingInterval !== undefined && !(Number.isInteger(o.pingInterval) && o.pingInterval >= 0 && o.pingInterval <= MAX_TIMER_MS)) throw new ConfigError(`ws pingInterval must be 0..${MAX_TIMER_MS} ms, got ${o.pingInterval}`);
    const up = o.advertise === undefined ? undefined : wsUrlProblem(o.advertise);
    if (up) throw new ConfigError(`advertised WebSocket URL "${o.advertise}": ${up}`);
    this.owned = o.server === undefined;
    this.path = o.path ?? (this.owned ? undefined : '/ws');
    const origins = (o.origins ?? []).filter((s) => s.length > 0);
    this.origins = origins.length === 0 || origins.includes('*') ? undefined : new Set(origins.map(normalizeOrigin));
    this.loopbackPagesOnly = origins.length === 0 && node.options.token === undefined && node.options.jwt === undefined;
    this.compress = o.perMessageDeflate !== undefined && o.perMessageDeflate !== false;
    const plain = (_req: IncomingMessage, res: ServerResponse): void => {
      res.writeHead(426, { upgrade: 'websocket', 'content-type': 'text/plain' });
      res.end('meshbus WebSocket gateway: connect with a WebSocket client\n');
    };
    // Own port: the listener policy shared with the HTTP API (headers within handshakeTimeout, listener-timeouts.ts).
    this.http = o.server ?? this.ownServer(plain);
    this.http.on('upgrade', this.onUpgrade);
    this.http.on('connection', this.onConnection);
    this.http.on('secureConnection', this.onConnection);
    this.http.on('request', this.onRequest);
  }

  /**
   * The gateway's own HTTP server, its connections bounded as the node's
   * client connections are (maxConnections, maxConnectionsPerIp) until they
   * upgrade (then the node's own bounds, with their close codes): a plain request is answered 426 on a keep-alive connection
   * whose HELLO deadline starts again after it, so connections that sent one
   * every handshakeTimeout/2 stayed open for ever, uncounted by the node
   * (3,000 from one host, past its maxConnectionsPerIp of 1,024, held the
   * descriptors as long as they liked).
   */
  private ownServer(plain: (req: IncomingMessage, res: ServerResponse) => void): HttpServer {
    const n = this.node.options;
    const server = createListenerServer(plain, n.handshakeTimeout, this.options.tls, this.node.logger);
    if (!this.options.tls) server.on('clientError', onUnparsedRequest(this.node.logger));
    limitConnections(server, { maxConnections: n.maxConnections, maxConnectionsPerIp: n.maxConnectionsPerIp, maxPipelined: WS_MAX_PIPELINED }, n.handshakeTimeout, this.options.tls !== undefined, true);
    return server;
  }

  /** The port WebSocket clients connect to (the HTTP server's when mounted). */
  get port(): number {
    if (this.owned) return this.boundPort;
    const a = this.http.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /** Open WebSocket client connections. */
  get connectionCount(): number {
    return this.transports.size;
  }

  /** Starts the ping timer and, on its own port, listens. ConfigError for a port in use. */
  async listen(): Promise<this> {
    if (this.owned) {
      const host = this.options.host ?? this.node.host;
      const port = this.options.port ?? DEFAULT_WS_PORT;
      this.boundPort = await listenOn(this.http, port, host, { port: 'ws', label: 'WebSocket' });
      // Announced by the cluster to other nodes' WebSocket clients, which cannot use the TCP addresses (a wildcard host is fixed where a peer sees this node).
      this.url = `${this.options.tls ? 'wss' : 'ws'}://${hostPort(host, this.boundPort)}${this.path ?? '/'}`;
    }
    if (this.options.advertise !== undefined) this.url = this.options.advertise;
    if (this.url !== undefined) this.node.hooks.wsUrl ??= this.url;
    const every = this.pingEvery;
    if (every > 0) {
      this.pinger = setInterval(() => this.pingAll(), every);
      this.pinger.unref();
    }
    this.node.logger.info({ port: this.port, path: this.path ?? '*', mounted: !this.owned, deflate: this.compress }, 'ws gateway listening');
    return this;
  }

  /** Stops accepting; drops the connections still open (after the node's shutdown has said GOODBYE). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.url !== undefined && this.node.hooks.wsUrl === this.url) this.node.hooks.wsUrl = undefined;
    if (this.pinger) clearInterval(this.pinger);
    this.http.off('upgrade', this.onUpgrade);
    this.http.off('connection', this.onConnection);
    this.http.off('secureConnection', this.onConnection);
    this.http.off('request', this.onRequest);
    for (const w of this.transports) w.destroy();
    if (this.wss) await this.wss.then((wss) => wss.close(), () => {});
    if (this.owned && this.http.listening) {
      await new Promise<void>((resolve) => {
        this.http.close(() => resolve());
        this.http.closeAllConnections();
      });
    }
  }

  private readonly onConnection = (socket: object): void => {
    this.acceptedAt.set(socket, Date.now());
  };

  /** A keep-alive connection may upgrade after plain requests: its handshake starts after the last answer. */
  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    res.once('finish', () => this.acceptedAt.set(req.socket, Date.now()));
  };

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (this.path !== undefined && path !== this.path) {
      // Mounted: another upgrade handler may own this path.
      if (!this.owned && this.http.listeners('upgrade').length > 1) return;
      this.refuse(socket, 404, 'MB_ERR_NOT_FOUND', `no WebSocket endpoint at this path: connect to ${this.path}`);
      return;
    }
    const origin = req.headers.origin;
    if (this.closed || (origin !== undefined && !this.originAllowed(origin))) {
      this.node.stats.connectionsRefused++;
      this.originRefusals++;
      // Once per address every 5 min (counting the refusals since start): anyone can send upgrades with any Origin, a line each was a log flood.
      const remote = req.socket.remoteAddress ?? '?';
      if (this.refusalsTold.due(remote)) {
        const why = this.closed
          ? 'ws connection refused: gateway closed'
          : this.loopbackPagesOnly
            ? 'ws connection refused: a page from another site, and this node asks clients for no token (allow its origin with --ws-origins; said again at most every 5 min per address)'
            : 'ws connection refused: origin not allowed (said again at most every 5 min per address)';
        this.node.logger.info({ origin, remote, refused: this.originRefusals }, why);
      }
      if (this.closed) this.refuse(socket, 503, 'MB_ERR_DRAINING');
      // The page's origin is not echoed: the caller chose it, and the node's log has it.
      else this.refuse(socket, 403, 'MB_ERR_PERMISSION_DENIED', this.loopbackPagesOnly ? ORIGIN_LOOPBACK_ONLY : ORIGIN_NOT_LISTED);
      return;
    }
    if (this.wssReady) {
      this.wssReady.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket as Socket));
      return;
    }
    // While ws loads (the first upgrades only) the socket has no error listener of ws's yet: an error must not go unhandled.
    const onError = (): void => void socket.destroy();
    socket.on('error', onError);
    this.server().then(
      (wss) => {
        socket.off('error', onError);
        // Closed while ws loaded: as a closed gateway.
        if (this.closed) return this.refuse(socket, 503, 'MB_ERR_DRAINING');
        wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req.socket as Socket));
      },
      (e: unknown) => {
        socket.off('error', onError);
        // Once a minute (ThrottledLog): each upgrade fails again, and anyone who reaches the port can send one.
        throttled(this.node.logger).error({ err: (e as Error).message }, 'ws gateway: cannot load ws');
        this.refuse(socket, 500, 'MB_ERR_INTERNAL', 'the WebSocket gateway could not load ws');
      },
    );
  };

  /** Whether a browser page of `origin` may open a connection (WsGatewayOptions.origins). */
  private originAllowed(origin: string): boolean {
    if (this.origins !== undefined) return this.origins.has(normalizeOrigin(origin));
    return !this.loopbackPagesOnly || isLoopbackOrigin(origin);
  }

  /** ws's server for the upgrades, loading `ws` on the first call. */
  private server(): Promise<WebSocketServer> {
    this.wss ??= import('ws').then(
      ({ WebSocketServer }) =>
        (this.wssReady = new WebSocketServer({
          noServer: true,
          maxPayload: this.options.maxPayload ?? this.node.maxFrameLength + 64 * 1024,
          perMessageDeflate: this.options.perMessageDeflate ?? false,
          clientTracking: false,
        })),
      (e: unknown) => {
        // The next upgrade tries again.
        this.wss = undefined;
        throw e;
      },
    );
    return this.wss;
  }

  private accept(ws: WebSocket, socket: Socket): void {
    const node = this.node;
    if (node.draining || node.connectionCount >= node.options.maxConnections) {
      // As for TCP: a typed ERROR, then close.
      node.stats.connectionsRefused++;
      const code = node.draining ? 'MB_ERR_DRAINING' : 'MB_ERR_TOO_MANY_CONNECTIONS';
      ws.on('error', () => {});
      ws.send(errorFrame(code, 0, ERROR_CODES[code].message), { binary: true });
      ws.close(wsCloseCode(code), code);
      return;
    }
    let wire!: WsTransport;
    const session = node.attach((events) => {
      wire = new WsTransport(ws, socket, events, {
        protocolError: (code, message) => {
          node.stats.protocolErrors++;
          session.fail(code, message);
        },
      }, this.compress, this.pingEvery);
      return wire;
    });
    this.transports.add(wire);
    // The session's own HELLO timer starts now; the policy counts from the TCP accept, so the
    // time the upgrade headers took is taken off (listener-timeouts.ts).
    const due = (this.acceptedAt.get(socket) ?? Date.now()) + node.options.handshakeTimeout;
    const hello = setTimeout(() => {
      if (!session.isOpen) session.fail('MB_ERR_HANDSHAKE_TIMEOUT', `${node.options.handshakeTimeout} ms from accept`);
    }, Math.max(0, due - Date.now()));
    ws.once('close', () => {
      clearTimeout(hello);
      this.transports.delete(wire);
    });
  }

  /**
   * Answers an upgrade it will not take with `status` and the HTTP API's error body
   * (`{ error: { code, num, message } }`), and ends it (destroyed after drainTimeout if the
   * client does not close). Before, an empty body: a developer whose page was refused saw
   * "403" and nothing to say why.
   */
  private refuse(socket: Duplex, status: number, code: ErrorCode, message: string = ERROR_CODES[code].message): void {
    refuseConnection(socket, rawErrorAnswer(status, code, message), this.node.options.drainTimeout);
  }

  /** ws-level ping period, ms (0: off). */
  private get pingEvery(): number {
    return this.options.pingInterval ?? 30_000;
  }

  private pingAll(): void {
    const now = Date.now();
    for (const w of this.transports) {
      if (w.keepAlive(now)) continue;
      this.node.stats.staleConnections++;
      this.node.logger.debug({ remote: w.remote }, 'ws connection closed: no pong');
      w.destroy();
    }
  }
}

/** Starts a WebSocket gateway for `node` (see WsGatewayOptions). */
export function startWsGateway(node: MeshNode, options: WsGatewayOptions = {}): Promise<WsGateway> {
  return new WsGateway(node, options).listen();
}

function normalizeOrigin(o: string): string {
  return o.trim().toLowerCase().replace(/\/+$/, '');
}

/** An http(s) origin whose host is this machine by name or address: `localhost`, `*.localhost`, `127.x.x.x`, `[::1]`. */
export function isLoopbackOrigin(o: string): boolean {
  let u: URL;
  try {
    u = new URL(o.trim());
  } catch {
    return false;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  return isThisMachineName(u.hostname);
}

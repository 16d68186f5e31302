import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, createServer as createTlsServer, type PeerCertificate } from 'node:tls';
import { lookup } from 'node:dns/promises';
import { X509Certificate } from 'node:crypto';
import { errorFrame } from '@meshbus/proto';
import { PortSockets, ToldRecently, addressKey, listenOn, refuseConnection, serverTlsOptions, tlsPort, type Logger } from '@meshbus/core';
import { parseAddress, type ResolvedClusterOptions } from './options.js';
import { PreAuthGate, connectionKey } from './pre-auth-gate.js';

/** Refused pre-auth connections (and failed TLS handshakes) are logged at most this often, ms (with the count since the last line). */
const REFUSAL_LOG_EVERY = 10_000;

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** Host names a peer certificate may carry for an address learned by gossip, at most (see PeerPort.tlsNames). */
const MAX_TLS_NAMES = 16;

/**
 * The host names this node's own certificate carries (DNS subject alternative
 * names; a wildcard is no host name to check a peer's against). Nodes of one
 * mesh often share a certificate, or one per host: `meshbus start --workers`
 * dials its siblings at 127.0.0.1, which a certificate naming the host does
 * not carry, and they never linked.
 */
function ownNames(cert: string): string[] {
  let san: string | undefined;
  try {
    san = new X509Certificate(cert).subjectAltName;
  } catch {
    return []; // the TLS server refuses it, with its own error
  }
  const out: string[] = [];
  for (const part of (san ?? '').split(',')) {
    const m = /^\s*DNS:([^*\s]+)\s*$/.exec(part);
    if (m) out.push(m[1]!);
  }
  return out;
}

/**
 * The cluster port's sockets: listens for peers (plain TCP or TLS), bounds
 * the connections that have not authenticated yet (in total and per IP), and
 * dials peer addresses. It hands connected sockets on; what runs over them
 * (PeerLink) is the ClusterNode's business.
 */
/** Unresolvable addresses remembered for logging, at most (seeds plus gossip-learned ones are bounded anyway). */
const MAX_DNS_FAILING = 1024;

/** The hint of every TLS mismatch between peers, on either side. */
const SAME_TLS = 'every node of a mesh needs the same cluster TLS setting (--cluster-tls)';

/** OpenSSL's word for a first record that is not TLS: a TLS peer and a plain one. */
const NOT_TLS = /wrong version number|packet length too long/;

export class PeerPort {
  private readonly server: Server;
  /** Accepted sockets no link owns yet (a TLS handshake under way, a plain peer being told): close() destroys them. */
  private readonly sockets: PortSockets;
  private readonly preAuth: PreAuthGate;
  private closed = false;
  private boundPort = 0;
  private refusalsLogged = 0;
  private lastRefusalLog = 0;
  /** TLS handshakes on the cluster port that failed (or timed out), since start; logged at most every REFUSAL_LOG_EVERY. */
  private tlsFailures = 0;
  private lastTlsFailureLog = 0;
  /** Addresses whose name does not resolve, with the last error code: logged once per change, not per redial. */
  private readonly dnsFailing = new Map<string, string>();
  /**
   * Addresses dialed with TLS whose port does not speak it: logged once each
   * every 5 min (bounded as dnsFailing; with no end to the window, addresses
   * past the bound shared one key that was never said again).
   */
  private readonly plainPeers = new ToldRecently(5 * 60_000, MAX_DNS_FAILING);
  /**
   * Host names the mesh is reached by (seeds, names dialed over TLS, and
   * those of this node's own certificate: ownNames):
   * gossip announces peers by address while certificates usually name
   * hosts, so a peer learned as `10.0.0.7:4481` failed verification and was
   * never linked (NATS routes had the same fault). A certificate valid for
   * the address or for one of these names (and signed by the mesh's CA) passes.
   */
  private readonly tlsNames = new Set<string>();
  /**
   * Dials under way (connecting, or in their TLS handshake), each as the
   * function that ends it: close() ends them. Before, a dial that completed
   * after the cluster stopped (a TLS handshake or a DNS answer still out at
   * stop()) became a peer link nobody would close: it authenticated, routed
   * events and held the process open for ever.
   */
  private readonly dialing = new Set<() => void>();

  /** `accepted` gets each admitted socket (TLS: once its handshake is done) with its pre-auth gate key. */
  constructor(
    private readonly options: ResolvedClusterOptions,
    private readonly logger: Logger,
    accepted: (socket: Socket, gateKey: string) => void,
  ) {
    const handOn = (s: Socket): void => {
      this.sockets.owned(s);
      accepted(s, connectionKey(s));
    };
    this.preAuth = new PreAuthGate(options.maxPreAuth, options.maxPreAuthPerIp);
    for (const seed of options.seeds) this.addTlsName(seed);
    const tls = options.tls;
    for (const name of tls ? ownNames(tls.cert) : []) if (this.tlsNames.size < MAX_TLS_NAMES) this.tlsNames.add(name);
    if (tls) {
      // The TLS handshake is part of the peer handshake: same timeout, and the slot is taken on TCP accept (below).
      const secure = createTlsServer({ ...serverTlsOptions(tls), noDelay: true, handshakeTimeout: options.handshakeTimeout }, handOn);
      secure.on('tlsClientError', (e, socket) => {
        // Not destroyed by Node itself (a handshake timeout would leave the socket open).
        socket.destroy();
        this.tlsFailed(e.message);
      });
      // The first bytes read before any TLS state (core tls-port.ts): a plain peer is told, in a frame it reads, what is wrong.
      // admit runs first, so a refused connection costs no TLS state either.
      this.server = tlsPort(secure, (raw) => this.refusePlain(raw), {
        waitMs: options.handshakeTimeout,
        silent: () => this.tlsFailed('no TLS handshake within the handshake timeout'),
        admit: (raw) => this.admit(raw),
      });
    } else {
      this.server = createServer({ noDelay: true }, (raw) => {
        if (this.admit(raw)) handOn(raw);
      });
    }
    this.sockets = new PortSockets(this.server);
  }

  /** A failed TLS handshake on the cluster port, logged at most every REFUSAL_LOG_EVERY (with the count). */
  private tlsFailed(err: string): void {
    this.tlsFailures++;
    const now = Date.now();
    if (now - this.lastTlsFailureLog < REFUSAL_LOG_EVERY) return;
    this.lastTlsFailureLog = now;
    this.logger.warn({ err, failures: this.tlsFailures }, 'peer TLS handshake failed');
  }

  /** A peer that did not start with a TLS handshake on the TLS cluster port: ERROR (it reads frames), then close. */
  private refusePlain(raw: Socket): void {
    const message = `this cluster port speaks TLS: ${SAME_TLS}`;
    this.tlsFailed(`a plain connection: ${SAME_TLS}`);
    refuseConnection(raw, errorFrame('MB_ERR_HANDSHAKE_REQUIRED', 0, message), this.options.handshakeTimeout);
  }

  /** Peer connections accepted that have not authenticated yet. */
  get pending(): number {
    return this.preAuth.pending;
  }

  /** Peer connections refused because the pre-auth bounds were reached, since start. */
  get refused(): number {
    return this.preAuth.refused;
  }

  /** The port listened on (the chosen one when options.port is 0); 0 before listen(). */
  get port(): number {
    return this.boundPort;
  }

  /** Frees the pre-auth slot of a connection that authenticated (its socket may stay open). */
  release(gateKey: string): void {
    this.preAuth.release(gateKey);
  }

  /** Listens on options.host:options.port (bound by this process, also in a node:cluster worker); ConfigError when the port is taken. */
  async listen(): Promise<number> {
    const o = this.options;
    this.boundPort = await listenOn(this.server, o.port, o.host, { port: 'cluster', label: 'peers' }, true);
    return this.boundPort;
  }

  /**
   * Stops accepting (new connections are refused from now on), ends the
   * dials still under way (their sockets destroyed, the attempts false) and
   * closes the listener, destroying the accepted sockets no link owns yet (a
   * TLS handshake under way: before, stop() waited for it up to the
   * cluster's handshakeTimeout). Links close themselves (goodbye).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const end of [...this.dialing]) end();
    await this.sockets.close();
  }

  /**
   * Takes a pre-auth slot for a new TCP connection, or closes it (no ERROR
   * frame: it would cost a write per refused connection, and with TLS it
   * could not be read anyway). The slot is freed when the link is up or the
   * socket closes.
   */
  private admit(raw: Socket): boolean {
    // Per host as the auth throttle counts it (core addressKey): an IPv4-mapped address as its IPv4,
    // IPv6 by /64, so a host rotating through its own subnet gets no more slots than one address.
    const ip = raw.remoteAddress === undefined ? undefined : addressKey(raw.remoteAddress);
    const key = connectionKey(raw);
    if (this.closed || ip === undefined || !this.preAuth.admit(key, ip)) {
      raw.destroy();
      if (ip !== undefined && !this.closed) this.logRefusal(ip);
      return false;
    }
    raw.once('close', () => this.preAuth.release(key));
    return true;
  }

  private logRefusal(ip: string): void {
    const now = Date.now();
    if (now - this.lastRefusalLog < REFUSAL_LOG_EVERY) return;
    this.lastRefusalLog = now;
    const refused = this.preAuth.refused - this.refusalsLogged;
    this.refusalsLogged = this.preAuth.refused;
    this.logger.warn(
      { code: 'MB_ERR_TOO_MANY_CONNECTIONS', remote: ip, refused, pending: this.preAuth.pending, maxPreAuth: this.options.maxPreAuth, maxPreAuthPerIp: this.options.maxPreAuthPerIp },
      'refusing peer connections: too many have not authenticated yet',
    );
  }

  /**
   * Dials `addr` (host:port; the host may resolve to several addresses, each
   * tried) and hands every socket that connected (with TLS: completed its
   * handshake) to `connected`. Resolves true when at least one did. A connect
   * that does not complete within options.handshakeTimeout is a failed attempt.
   * Once close() was called nothing more is handed on: a dial under way is
   * ended (its socket destroyed) and none is started.
   */
  async dial(addr: string, connected: (socket: Socket) => void): Promise<boolean> {
    if (this.closed) return false;
    const { host, port } = parseAddress(addr);
    let hosts: string[];
    try {
      hosts = (await lookup(host, { all: true })).map((a) => a.address);
    } catch (e) {
      if (!this.closed) this.dnsFailed(addr, host, (e as NodeJS.ErrnoException).code ?? 'EUNKNOWN');
      return false;
    }
    if (this.dnsFailing.delete(addr)) this.logger.info({ address: addr, addresses: hosts }, 'peer address resolves again');
    let any = false;
    for (const h of hosts) {
      if (this.closed) return false;
      const ok = await new Promise<boolean>((resolve) => {
        const tls = this.options.tls;
        const socket = tls
          ? tlsConnect({ host: h, port, ca: tls.ca, cert: tls.cert, key: tls.key, ...this.tlsIdentity(host) })
          : netConnect({ host: h, port });
        const settle = (ok: boolean): void => {
          clearTimeout(timer);
          this.dialing.delete(end);
          resolve(ok);
        };
        const end = (): void => {
          socket.destroy();
          settle(false);
        };
        const timer = setTimeout(end, this.options.handshakeTimeout);
        this.dialing.add(end);
        socket.once(tls ? 'secureConnect' : 'connect', () => {
          if (this.closed) return end();
          if (tls) this.addTlsName(addr);
          socket.removeAllListeners('error');
          settle(true);
          connected(socket);
        });
        socket.once('error', (e) => {
          if (tls && NOT_TLS.test(e.message)) this.plainPeer(addr);
          settle(false);
        });
      });
      any ||= ok;
    }
    return any;
  }

  /** SNI and the names the certificate may carry: the host name, or for an address the address or a name of the mesh. */
  private tlsIdentity(host: string): { servername?: string; checkServerIdentity?: (h: string, cert: PeerCertificate) => Error | undefined } {
    if (!isIp(host)) return { servername: host };
    if (this.tlsNames.size === 0) return {};
    return {
      checkServerIdentity: (_h, cert) => {
        const err = checkServerIdentity(host, cert);
        if (err === undefined) return undefined;
        for (const name of this.tlsNames) if (checkServerIdentity(name, cert) === undefined) return undefined;
        return err;
      },
    };
  }

  private addTlsName(addr: string): void {
    let host: string;
    try {
      host = parseAddress(addr).host;
    } catch {
      return;
    }
    if (!isIp(host) && this.tlsNames.size < MAX_TLS_NAMES) this.tlsNames.add(host);
  }

  /** `addr` answered a TLS dial with plain bytes: said once per address every 5 min (the redialer says "no connection" at each failure). */
  private plainPeer(addr: string): void {
    if (this.plainPeers.due(addr)) this.logger.warn({ address: addr }, `peer at ${addr} does not speak TLS on its cluster port: ${SAME_TLS}`);
  }

  private dnsFailed(addr: string, host: string, code: string): void {
    if (this.dnsFailing.get(addr) === code) return;
    this.dnsFailing.delete(addr);
    if (this.dnsFailing.size >= MAX_DNS_FAILING) this.dnsFailing.delete(this.dnsFailing.keys().next().value!);
    this.dnsFailing.set(addr, code);
    // A seed that does not resolve yet is normal while a StatefulSet starts; said once, not per redial.
    this.logger.warn({ address: addr, host, code }, 'cannot resolve peer address (DNS); still dialing');
  }
}

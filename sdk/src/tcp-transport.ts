import { Socket, connect as netConnect } from 'node:net';
import { checkServerIdentity, connect as tlsConnect, type PeerCertificate } from 'node:tls';
import { ClientError, isTlsRecord, type FrameScanner } from '@meshbus/proto';
import type { Transport } from './transport.js';
import type { ServerUrl } from './servers.js';
import { closedUnanswered, isHttpResponse, notTls, speaksHttp, speaksTls } from './tls-misfit.js';
import { loadNativeScanner, nativeScanner } from './native-scanner.js';

/** TLS settings of a Node client (PEM text). */
export interface TlsClientOptions {
  /** CA bundle to trust instead of the system's. */
  ca?: string;
  /** Client certificate and key, for nodes that require mutual TLS. */
  cert?: string;
  key?: string;
  /** false only for testing against self-signed certificates. Default true. */
  rejectUnauthorized?: boolean;
}

/** How long a closing socket may take nothing more of what it still holds before it is cut, ms. */
const CLOSE_STALL_MS = 2000;
/** How long a closing socket that keeps handing bytes on slowly may take in all, ms. */
const CLOSE_MAX_MS = 30_000;

/**
 * TCP transport for Node (node:net). The chunks of one send() (a tick's
 * frames, gathered by the connection) are written between cork() and
 * uncork(), so Node hands them to one writev without concatenating; Nagle
 * is off so a lone frame leaves at once.
 */
export class TcpTransport implements Transport {
  onData: (chunk: Uint8Array) => void = () => {};
  onClose: (reason?: Error) => void = () => {};
  private socket: Socket | undefined;
  private closed = false;
  private error: Error | undefined;
  /** Bytes were received: a close before any says more than "closed by peer" (tls-misfit.ts). */
  private heard = false;

  /** What the system has not taken yet, as it takes it (unsent() below: writableLength fell in one step, 64 MiB to 0). */
  get pendingBytes(): number {
    const s = this.socket;
    return s ? unsent(s) : 0;
  }

  get scanner(): FrameScanner | undefined {
    return nativeScanner();
  }

  /**
   * `tls`: options for tls:// servers (CA to trust, client certificate for
   * mutual TLS). `tlsNames`: host names the user gave tls:// servers by,
   * which a certificate may carry for a server reached by address (tlsIdentity).
   */
  constructor(
    private readonly tls: TlsClientOptions = {},
    private readonly tlsNames: readonly string[] = [],
  ) {}

  async connect(server: ServerUrl, options: { timeout: number }): Promise<void> {
    await Promise.all([loadNativeScanner(), this.dial(server, options)]);
  }

  private dial(server: ServerUrl, options: { timeout: number }): Promise<void> {
    return new Promise((resolve, reject) => {
      const secure = server.scheme === 'tls';
      const socket = secure
        ? tlsConnect({ host: server.host, port: server.port, ...this.tls, ...tlsIdentity(server.host, this.tlsNames) })
        : netConnect({ host: server.host, port: server.port });
      this.socket = socket;
      let opened = false;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: no connection within ${options.timeout} ms`));
      }, options.timeout);
      socket.setNoDelay(true);
      socket.once(secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        opened = true;
        resolve();
      });
      socket.on('data', (chunk: Buffer) => {
        if (!this.heard) {
          this.heard = true;
          // A TLS record where the node's first frame should be: this is a TLS port.
          if (!secure && isTlsRecord(chunk)) {
            this.error = speaksTls(server);
            socket.destroy();
            return;
          }
          // An HTTP response where the node's first frame should be: an HTTP API's or a gateway's port.
          if (isHttpResponse(chunk)) {
            this.error = speaksHttp(server);
            socket.destroy();
            return;
          }
        }
        this.onData(chunk);
      });
      socket.on('error', (e) => {
        this.error = e;
        if (!opened) {
          clearTimeout(timer);
          reject((secure && notTls(server, e)) || new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: ${e.message}`, { cause: e }));
        }
      });
      socket.on('close', () => {
        clearTimeout(timer);
        const wasOpen = opened;
        opened = false;
        if (!wasOpen) {
          // Closed before connecting (close() during the connect; errors rejected above): settle, do not leave it pending.
          reject(new ClientError('MB_ERR_CONNECT_FAILED', `${server.href}: closed before connecting`));
          return;
        }
        const local = this.closed;
        this.closed = true;
        const e = this.error;
        if (local) this.onClose(undefined);
        else if (e instanceof ClientError) this.onClose(e);
        else this.onClose(new ClientError('MB_ERR_CONNECTION_CLOSED', e ? `${server.href}: ${e.message}` : this.heard || secure ? `${server.href}: closed by peer` : closedUnanswered(server), { cause: e }));
      });
    });
  }

  send(chunks: Uint8Array[]): void {
    const s = this.socket;
    if (!s || this.closed || s.destroyed) throw new ClientError('MB_ERR_CONNECTION_CLOSED', `socket closed: ${this.error?.message ?? 'no longer writable'}`);
    if (chunks.length === 1) {
      s.write(chunks[0]!);
      return;
    }
    // One writev for the frames of the tick.
    s.cork();
    for (const c of chunks) s.write(c);
    s.uncork();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const s = this.socket;
    if (!s) return;
    // Still connecting (a server that does not answer its SYN): nothing to flush; end() would keep it until it connects.
    if (s.connecting) {
      s.destroy();
      return;
    }
    s.end();
    // Do not wait forever for a peer that does not read: cut once CLOSE_STALL_MS pass with nothing more
    // taken by the system (or CLOSE_MAX_MS in all). Before, the socket was cut 2 s after close() whatever it
    // still held: a draining node that reads what was sent before its GOODBYE until its own deadline
    // (SPEC 10.7) lost what it had not read yet when its input was paused.
    let left = unsent(s);
    const until = Date.now() + CLOSE_MAX_MS;
    const check = (): void => {
      const now = unsent(s);
      if (s.destroyed || now === 0 || now >= left || Date.now() >= until) return void s.destroy();
      left = now;
      setTimeout(check, CLOSE_STALL_MS).unref();
    };
    setTimeout(check, CLOSE_STALL_MS).unref();
  }
}

/**
 * Bytes `s` holds that the system has not taken, for seeing progress: Node
 * hands everything queued behind a write to one writev, and writableLength
 * counts that write whole until the system took its last byte, while libuv's
 * queue (`_handle.writeQueueSize`) shrinks as the system takes it. So: what
 * waits behind the write in progress (`_writableState.writelen`) plus what
 * libuv still holds of it (core's unsent-events.ts reads them alike).
 * Without those internals, writableLength alone.
 */
function unsent(s: Socket): number {
  const i = s as unknown as { _writableState?: { writelen?: number }; _handle?: { writeQueueSize?: number } | null };
  const inFlight = i._writableState?.writelen;
  const left = i._handle?.writeQueueSize;
  if (typeof inFlight !== 'number' || typeof left !== 'number') return s.writableLength;
  return s.writableLength - inFlight + Math.min(left, inFlight);
}

/** An IPv4 or IPv6 address rather than a host name (TLS sends no server name for it). */
export function isIpHost(host: string): boolean {
  return /^[\d.]+$|:/.test(host);
}

/**
 * SNI and the names the certificate may carry. A mesh announces its nodes
 * by address (WELCOME peers, GOODBYE), while certificates usually name
 * hosts: a client that reached the mesh as `tls://mesh.example.com` could
 * not verify a learned `10.0.0.7:4480`, and failover to every learned node
 * failed. As NATS clients do, a server reached by address may present a
 * certificate for the address or for a host name the user gave (still
 * signed by a trusted CA).
 */
function tlsIdentity(host: string, names: readonly string[]): { servername?: string; checkServerIdentity?: (h: string, cert: PeerCertificate) => Error | undefined } {
  if (!isIpHost(host)) return { servername: host };
  if (names.length === 0) return {};
  return {
    checkServerIdentity: (_h, cert) => {
      const err = checkServerIdentity(host, cert);
      return err === undefined || names.some((n) => checkServerIdentity(n, cert) === undefined) ? undefined : err;
    },
  };
}

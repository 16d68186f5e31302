import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import WebSocket, * as wsModule from 'ws';
import { BATCH_BYTES, ClientError, messageEnd, type FrameScanner } from '@meshbus/proto';
import { loadNativeScanner, nativeScanner } from './native-scanner.js';
import type { ServerUrl } from './servers.js';
import { closedUnanswered, notAGateway, notTls } from './tls-misfit.js';
import { WsTransport, gather, type WebSocketConstructor, type WebSocketLike, type WsTransportOptions } from './ws-transport.js';

/**
 * Message buffers of BATCH_BYTES a connection has (free or in a write), at
 * most: 4 × 64 KiB, what one publisher's burst sends in one tick (bench: 64
 * events of 4 KiB). Past them a message gets a buffer of its own size.
 */
const POOL = 4;

/** RFC 6455 §5.2 opcode of a binary message. */
const BINARY = 2;

/**
 * `ws`'s frame builder (`lib/sender.js`, the named export `Sender`,
 * marked public there; not in `@types/ws`): with `mask` it draws a fresh
 * random key from ws's pool and masks with `bufferutil` when that loads.
 */
type FrameFn = (data: Buffer, options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean }) => Buffer[];
const frame: FrameFn | undefined = (wsModule as unknown as { Sender?: { frame?: FrameFn } }).Sender?.frame?.bind((wsModule as unknown as { Sender: object }).Sender);

/**
 * The WebSocket transport of the Node entry (the `ws` package).
 *
 * Every batch is gathered into a 64 KiB buffer this transport reuses, cut
 * into messages between frames (messageEnd, SPEC 2), and masked there: a
 * client MUST mask what it sends with a fresh unpredictable key (RFC 6455
 * §5.3), and `ws.send` does it into a *new* buffer per message
 * (it may not write into the caller's bytes), whose ArrayBuffer memory drove
 * V8's major GCs and halved the rate of a 1 → 1 at 4 KiB over WebSocket
 * (bench/README.md "WebSocket gateway"). Here the mask (ws's own: `Sender.frame`,
 * a fresh random key per message, `bufferutil` when it loads) is applied in
 * place in the reused buffer, and the frame is written to the connection's
 * socket (the one `ws` upgraded, from its public `'upgrade'` event), as
 * `ws`'s sender writes it: header, then the bytes, in one corked write.
 *
 * Written beside `ws`'s own sender, order holds because that sender writes
 * synchronously while nothing is queued in it, which is always the case
 * unless permessage-deflate was negotiated (compression queues) or a Blob is
 * sent (never here): a connection with an extension, or a `ws` without
 * `Sender.frame`, sends through `ws.send`. A buffer is taken back once the
 * socket has written it (the write callback). Messages over BATCH_BYTES (one
 * large frame) get a buffer of their own, masked in place the same way.
 * Browsers mask natively inside their WebSocket: WsTransport there.
 */
export class NodeWsTransport extends WsTransport {
  private readonly free: Buffer[] = [];
  /** Pool buffers in writes not yet done: `lent + free.length <= POOL`. */
  private lent = 0;
  /** The socket `ws` upgraded; undefined until the handshake's response. */
  private socket: Socket | undefined;
  /** What `ws` said when the connection failed (WsTransport hears only that it closed). */
  private failure: Error | undefined;

  constructor(WebSocketCtor: WebSocketConstructor, options: WsTransportOptions = {}) {
    let self: NodeWsTransport | undefined;
    super(function (url: string, protocols?: string | string[]) {
      const ws = new WebSocketCtor(url, protocols) as WebSocketLike & Partial<Pick<WebSocket, 'once'>>;
      ws.once?.('upgrade', (res: IncomingMessage) => {
        if (self) self.socket = res.socket as Socket;
      });
      ws.once?.('error', (e: Error) => {
        if (self) self.failure = e;
      });
      return ws;
    } as unknown as WebSocketConstructor, options);
    self = this;
  }

  /**
   * wss:// to a plain port: "use ws://" rather than OpenSSL's "wrong version
   * number"; ws:// to a TLS port, which closes without a byte (Node's "socket
   * hang up"): "if it speaks TLS, use wss://" (tls-misfit.ts).
   */
  get scanner(): FrameScanner | undefined {
    return nativeScanner();
  }

  override async connect(server: ServerUrl, options: { timeout: number }): Promise<void> {
    await Promise.all([loadNativeScanner(), this.dial(server, options)]);
  }

  private dial(server: ServerUrl, options: { timeout: number }): Promise<void> {
    return super.connect(server, options).catch((e: unknown) => {
      const f = this.failure;
      if (server.scheme === 'wss') throw notTls(server, f) ?? e;
      // A meshbus TCP port answers an upgrade request in HTTP, 400 (SPEC 2): said, not a bare 1006.
      if (/^Unexpected server response: 400$/.test(f?.message ?? '')) throw notAGateway(server, f!);
      throw server.scheme === 'ws' && (f as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET' && f?.message === 'socket hang up' ? new ClientError('MB_ERR_CONNECT_FAILED', closedUnanswered(server), { cause: f }) : e;
    });
  }

  protected override sendMessage(ws: WebSocketLike, chunks: Uint8Array[], bytes: number): void {
    // A pool buffer only while the pool has one (free, or not made yet): with the
    // socket backed up (a node that stops reading) messages wait in it by the
    // thousand, and each held a whole 64 KiB buffer, 64 times the bytes of a
    // 1 KiB message (node-ws-backpressure.test.ts). Past the pool, a buffer of
    // the message's size, as ws.send's copy was.
    const pooled = bytes <= BATCH_BYTES && (this.free.length > 0 || this.lent < POOL);
    const buf = pooled ? (this.free.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES)) : Buffer.allocUnsafe(bytes);
    if (pooled) this.lent++;
    // Only the bytes gathered are sent: the rest of a reused (or uninitialised) buffer never leaves.
    const data = gather(chunks, buf.subarray(0, bytes)) as Buffer;
    const release = (): void => {
      if (!pooled) return;
      this.lent--;
      this.free.push(buf);
    };
    const socket = this.socket;
    const own = socket !== undefined && frame !== undefined && (ws as unknown as WebSocket).extensions === '';
    // Messages cut between frames (SPEC 2: 16 KiB once they hold large events, which a reader copies less), each
    // masked with a key of its own, all in one write.
    socket?.cork();
    for (let s = 0, e = 0; s < bytes; s = e) {
      e = messageEnd(data, s, bytes);
      const done = e === bytes ? release : undefined;
      if (!own) {
        ws.send(data.subarray(s, e), done);
        continue;
      }
      const [head, body] = frame!(data.subarray(s, e), { fin: true, opcode: BINARY, mask: true, readOnly: false, rsv1: false });
      socket!.write(head!);
      socket!.write(body!, done);
    }
    socket?.uncork();
  }
}

import { BATCH_BYTES } from '@meshbus/proto';
import { WsTransport, gather, type WebSocketLike } from './ws-transport.js';

/** Message buffers a connection keeps for reuse: 4 × 64 KiB, what one publisher's burst sends in one tick (bench: 64 events of 4 KiB). */
const POOL = 4;

/**
 * The WebSocket transport of the Node entry (the `ws` package). A message of
 * several chunks (a tick's frames: slab runs and `[head, payload]` of large
 * events) is gathered into a buffer this transport reuses once `ws` has
 * written the message (its send callback), instead of a new buffer per
 * message: `ws` makes a masked copy of every message anyway (RFC 6455 §5.3),
 * and a fresh 64 KiB buffer per message doubled the publisher's ArrayBuffer
 * allocation, whose bytes drive V8's major GCs (17.7 % of a bench
 * publisher's time at 4 KiB, bench/README.md "WebSocket gateway").
 * Messages over BATCH_BYTES (one large frame) get a buffer of their own.
 * Browsers have no send callback: WsTransport there.
 */
export class NodeWsTransport extends WsTransport {
  private readonly free: Buffer[] = [];

  protected override sendGathered(ws: WebSocketLike, chunks: Uint8Array[], bytes: number): void {
    if (bytes > BATCH_BYTES) return super.sendGathered(ws, chunks, bytes);
    const buf = this.free.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
    // Only the bytes gathered are sent: the rest of a reused (or uninitialised) buffer never leaves.
    ws.send(gather(chunks, buf.subarray(0, bytes)), () => {
      if (this.free.length < POOL) this.free.push(buf);
    });
  }
}

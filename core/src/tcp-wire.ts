import type { Socket } from 'node:net';
import { TickBatch } from './tick-batch.js';
import type { Wire, WireEvents } from './wire.js';

/**
 * Frames smaller than this on average are gathered into one buffer per tick
 * (one copy, one write); larger ones go out as a writev without a copy.
 */
const GATHER_MAX_AVG = 1024;

/**
 * A Wire over a TCP socket. Frames written during one tick (everything one
 * input chunk routes here) are held in an array and handed to the socket
 * once, on the next tick: small frames concatenated into a single write,
 * large ones corked into a single writev. Measured (bench/README.md): the
 * per-chunk stream bookkeeping and the per-iovec cost of a writev of
 * hundreds of small frames were the largest share of a node's CPU.
 */
export class TcpWire implements Wire {
  readonly kind = 'tcp' as const;
  readonly remote: string;
  private readonly pending = new TickBatch(() => this.flush());

  private flush(): void {
    const bytes = this.pending.bytes;
    const chunks = this.pending.take();
    const n = chunks.length;
    if (n === 0) return;
    const s = this.socket;
    if (s.destroyed || s.writableEnded) return;
    if (n === 1) s.write(chunks[0]!);
    else if (bytes <= n * GATHER_MAX_AVG) s.write(Buffer.concat(chunks, bytes));
    else {
      s.cork();
      for (let i = 0; i < n; i++) s.write(chunks[i]!);
      s.uncork();
    }
  }

  constructor(
    private readonly socket: Socket,
    events: WireEvents,
  ) {
    this.remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => events.data(chunk));
    socket.on('drain', () => events.drain());
    socket.on('close', () => events.close());
    // Errors (ECONNRESET, EPIPE) are followed by 'close'; the session handles that.
    socket.on('error', () => {});
  }

  /** Bytes not yet taken by the kernel: the socket's buffer plus this tick's frames. */
  get buffered(): number {
    return this.socket.writableLength + this.pending.bytes;
  }

  write(chunk: Uint8Array): void {
    if (this.socket.destroyed) return;
    this.pending.add(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.flush();
    this.socket.end();
  }

  destroy(): void {
    this.pending.take();
    this.socket.destroy();
  }
}

import type { Socket } from 'node:net';
import type { Wire, WireEvents } from './wire.js';

/**
 * A Wire over a TCP socket. The first write of a tick corks the socket and a
 * nextTick uncorks it, so every frame written while one input chunk is
 * routed leaves in a single writev without being concatenated.
 */
export class TcpWire implements Wire {
  readonly kind = 'tcp' as const;
  readonly remote: string;
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

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

  get buffered(): number {
    return this.socket.writableLength;
  }

  write(chunk: Uint8Array): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/**
 * A TCP proxy that adds a fixed one-way latency: each chunk is forwarded
 * `delayMs` after it arrived, in order, both ways. In front of a node's
 * cluster port (which the node advertises as its own address), it makes every
 * peer link to that node a link with that latency. It counts the bytes it
 * carried, which is every byte of the node's inbound peer links.
 */
import net from 'node:net';

export class DelayProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Bytes forwarded, both directions together. */
  bytes = 0;

  constructor(
    private readonly targetPort: number,
    private readonly delayMs: number,
  ) {}

  /** Listens on 127.0.0.1:`port` (0: any free port); resolves with the port. */
  listen(port = 0): Promise<number> {
    this.server = net.createServer((a) => this.pair(a));
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve((this.server!.address() as net.AddressInfo).port));
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private pair(a: net.Socket): void {
    const b = net.connect(this.targetPort, '127.0.0.1');
    for (const s of [a, b]) {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        // Either end gone: so is the link (after the bytes still on their way).
        setTimeout(() => (s === a ? b : a).destroy(), this.delayMs);
      });
    }
    this.pipe(a, b);
    this.pipe(b, a);
  }

  private pipe(from: net.Socket, to: net.Socket): void {
    from.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      if (this.delayMs === 0) to.write(chunk);
      // Timers of equal delay fire in the order they were set: order is kept.
      else setTimeout(() => to.destroyed || to.write(chunk), this.delayMs);
    });
  }
}

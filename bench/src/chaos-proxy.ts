/**
 * A TCP proxy for chaos runs: sits between two nodes' cluster ports and can
 * cut the link between them.
 *
 *  - `pass`: forwards bytes both ways.
 *  - `drop`: closes every open connection (RST) and every new one at once.
 *  - `stall`: stops forwarding in both directions but keeps the sockets open
 *    (a black hole: the nodes only notice through their ping timeouts).
 *    Back to `pass`, forwarding resumes where it stopped.
 *
 * With `only`, faults hit only the connections whose first bytes from the
 * dialer contain that marker (e.g. a node name in a peer HELLO), so one
 * proxy in front of a node can cut the link to one peer and not the others.
 */
import net from 'node:net';

export type ProxyMode = 'pass' | 'drop' | 'stall';

interface Pair {
  a: net.Socket;
  b: net.Socket;
  /** Subject to faults. */
  hit: boolean;
  stalled: boolean;
}

export class ChaosProxy {
  private server: net.Server | undefined;
  private readonly pairs = new Set<Pair>();
  private mode: ProxyMode = 'pass';
  /** Connections accepted, connections cut by `drop`. */
  accepted = 0;
  cut = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
    private readonly only?: string,
  ) {}

  get port(): number {
    const a = this.server?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  get currentMode(): ProxyMode {
    return this.mode;
  }

  async listen(port = 0, host = '127.0.0.1'): Promise<this> {
    this.server = net.createServer({ pauseOnConnect: true }, (a) => this.accept(a));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    return this;
  }

  private accept(a: net.Socket): void {
    this.accepted++;
    a.on('error', () => {});
    // The dialer speaks first (peer HELLO): its first chunk says whom faults apply to.
    a.once('data', (first: Buffer) => {
      a.pause();
      const hit = this.only === undefined || first.includes(this.only);
      if (hit && this.mode === 'drop') {
        this.cut++;
        a.resetAndDestroy();
        return;
      }
      const b = net.connect(this.targetPort, this.targetHost);
      b.on('error', () => {});
      const pair: Pair = { a, b, hit, stalled: false };
      this.pairs.add(pair);
      const close = (): void => {
        if (!this.pairs.delete(pair)) return;
        a.destroy();
        b.destroy();
      };
      a.once('close', close);
      b.once('close', close);
      b.once('connect', () => {
        b.write(first);
        if (hit && this.mode === 'stall') pair.stalled = true;
        else this.flow(pair);
      });
    });
    a.resume();
  }

  private flow(p: Pair): void {
    p.stalled = false;
    p.a.pipe(p.b);
    p.b.pipe(p.a);
    p.a.resume();
    p.b.resume();
  }

  private stallPair(p: Pair): void {
    p.stalled = true;
    p.a.unpipe(p.b);
    p.b.unpipe(p.a);
    p.a.pause();
    p.b.pause();
  }

  setMode(mode: ProxyMode): void {
    this.mode = mode;
    for (const p of [...this.pairs]) {
      if (!p.hit) continue;
      if (mode === 'drop') {
        this.cut++;
        this.pairs.delete(p);
        p.a.resetAndDestroy();
        p.b.resetAndDestroy();
      } else if (mode === 'stall') {
        if (!p.stalled) this.stallPair(p);
      } else if (p.stalled && p.b.readyState === 'open') {
        this.flow(p);
      }
    }
  }

  /** Open connections, and how many of them faults apply to. */
  connections(): { open: number; hit: number } {
    let hit = 0;
    for (const p of this.pairs) if (p.hit) hit++;
    return { open: this.pairs.size, hit };
  }

  async close(): Promise<void> {
    for (const p of this.pairs) {
      p.a.destroy();
      p.b.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

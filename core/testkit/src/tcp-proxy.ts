import net from 'node:net';

/** A TCP forwarder on loopback (a DNS alias, a load balancer, a cut link), closed by `close()`. */
export interface TcpProxy {
  /** `127.0.0.1:<port>` it listens on. */
  readonly addr: string;
  readonly port: number;
  /** Connections accepted so far (dials through it). */
  dials(): number;
  /** Ends every connection through it now (the listener stays). */
  cut(): void;
  /** Closes the listener and every connection through it. */
  close(): Promise<void>;
}

/**
 * Forwards every connection to the port `target(n)` returns for the n-th dial
 * (0-based), or refuses it (closes at once) when that is undefined: a fixed
 * backend, a round robin, a backend switched or cut during a test. A side's
 * error or close ends both.
 */
export async function tcpProxy(target: number | ((dial: number) => number | undefined)): Promise<TcpProxy> {
  const to = typeof target === 'number' ? (): number => target : target;
  const open = new Set<net.Socket>();
  let dials = 0;
  const server = net.createServer((s) => {
    const port = to(dials++);
    if (port === undefined) {
      s.destroy();
      return;
    }
    const up = net.connect(port, '127.0.0.1');
    open.add(s).add(up);
    s.pipe(up).pipe(s);
    const end = (): void => {
      open.delete(s);
      open.delete(up);
      s.destroy();
      up.destroy();
    };
    for (const x of [s, up]) {
      x.on('error', end);
      x.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    addr: `127.0.0.1:${port}`,
    port,
    dials: () => dials,
    cut: () => {
      for (const x of open) x.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const x of open) x.destroy();
        server.close(() => r());
      }),
  };
}

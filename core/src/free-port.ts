import { createServer } from 'node:net';

/**
 * Ports `freePort` picks from: below Linux's default ephemeral range
 * (32768-60999, /proc/sys/net/ipv4/ip_local_port_range), where the kernel
 * takes the source ports of outgoing connections. A port the kernel handed
 * out for `listen(0)` lies inside that range, and a busy process's next
 * outgoing connection could take it before the caller bound it (a flaky
 * "port already in use" in CI).
 */
const LOW = 20_000;
const HIGH = 32_768;

/**
 * The range to pick from, [first, last + 1): `MESHBUS_PORT_RANGE=lo-hi` (inclusive) when set
 * and valid, else 20000-32767. Processes that pick ports at the same time
 * (test workers, each starting nodes) get disjoint ranges this way, and the
 * processes they spawn inherit theirs: a port one picked and has not bound
 * yet is never another's pick (a CLI test's node found its WebSocket port
 * taken in a full run).
 */
export function portRange(): [number, number] {
  const m = /^(\d+)-(\d+)$/.exec(process.env['MESHBUS_PORT_RANGE'] ?? '');
  const lo = m ? Number(m[1]) : NaN;
  const hi = m ? Number(m[2]) : NaN;
  return lo >= 1024 && hi <= 65_535 && hi - lo >= 16 ? [lo, hi + 1] : [LOW, HIGH];
}

/** Ports this process handed out lately: two picks in a row are never the same port. */
const recent = new Set<number>();

/**
 * A TCP port free on `host` right now (bound, then released), chosen at
 * random in 20000..32767 (or MESHBUS_PORT_RANGE), never one of the last 64
 * this process returned; after 50 ports found taken, one the kernel picks.
 * Another process may still take it before the caller binds it: fine for
 * tests, local meshes and worker processes, not a reservation.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [lo, hi] = portRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = lo + Math.floor(Math.random() * (hi - lo));
    if (recent.has(port)) continue;
    if ((await bound(port, host)) === port) {
      recent.add(port);
      if (recent.size > 64) recent.delete(recent.values().next().value!);
      return port;
    }
  }
  return bound(0, host);
}

/** Binds `port` on `host` and releases it: the port bound, or 0 when it was taken. */
function bound(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', (e: NodeJS.ErrnoException) => (port !== 0 && e.code === 'EADDRINUSE' ? resolve(0) : reject(e)));
    s.listen(port, host, () => {
      const a = s.address();
      const got = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(got));
    });
  });
}

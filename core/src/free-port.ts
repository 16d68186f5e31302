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
 * A TCP port free on `host` right now (bound, then released), chosen at
 * random in 20000..32767; after 50 ports found taken, one the kernel picks.
 * Another process may still take it before the caller binds it: fine for
 * tests, local meshes and worker processes, not a reservation.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if ((await bound(port, host)) === port) return port;
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

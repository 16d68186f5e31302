import { connect, createServer } from 'node:net';
import { freePort, portRange } from '@meshbus/core';

/** A free loopback port (bound once and released: another process may take it in between). */
export { freePort };

/** True when nothing listens on 127.0.0.1:port (a connection to it is refused). */
export function portFree(port: number): Promise<boolean> {
  // By connecting, never by binding: a bind takes the port for a moment, and a process still
  // opening its ports (a node told to stop while it starts) then failed with "port already in use".
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

/** True when loopback `port` can be bound now (bound, then released): for choosing ports before anything uses them. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * Ports freePortRange handed out lately (the 512 last): nothing binds a range
 * between the call and its use, so two calls in a row could overlap (a dev
 * mesh given client ports 20825.. and cluster ports 20824.. failed to start:
 * "cluster port 20825 is already in use").
 */
const given = new Set<number>();

/** `n` consecutive free loopback ports, the first returned (random start in freePort's range: 20000..32767 or MESHBUS_PORT_RANGE, 50 tries). */
export async function freePortRange(n: number): Promise<number> {
  const [lo, hi] = portRange();
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = lo + Math.floor(Math.random() * (hi - lo - n));
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = !given.has(base + i) && (await bindable(base + i));
    if (!ok) continue;
    for (let i = 0; i < n; i++) given.add(base + i);
    while (given.size > 512) given.delete(given.values().next().value!);
    return base;
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

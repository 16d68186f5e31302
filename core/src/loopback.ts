import { isIP } from 'node:net';

/** True for an interface only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^::ffff:127\./.test(h);
}

/**
 * True for a name a browser resolves to this machine whatever DNS says:
 * a loopback host (isLoopbackHost) or a `*.localhost` name (RFC 6761
 * 6.3). What the WebSocket gateway's default Origin rule and an open HTTP
 * API's Host rule accept (against cross-site pages and DNS rebinding).
 */
export function isThisMachineName(host: string): boolean {
  return isLoopbackHost(host) || host.toLowerCase().endsWith('.localhost');
}

/** An address (optionally a URL) whose host means "every interface": a node bound to it advertises what nobody can dial. */
const UNSPECIFIED = /^([a-z][a-z0-9+.-]*:\/\/)?(?:0\.0\.0\.0|\[::\]|\[0:0:0:0:0:0:0:0\]|::(?=:\d))(:\d{1,5}(?:\/.*)?)$/i;

/**
 * `addr` ("host:port", or a URL) with a wildcard host ("0.0.0.0:4480", what
 * a node bound to every interface would say) replaced by `ip`, an address
 * this node is reached at: the one a peer link reached it at (cluster
 * `reachableAt`, as NATS does for routes), or the one an HTTP caller reached
 * it at (`GET /v1/node`, `/v1/cluster`). Any other address as it is.
 */
export function reachableAddress(addr: string, ip: string | undefined): string {
  if (ip === undefined || ip === '' || ip === '?') return addr;
  const m = UNSPECIFIED.exec(addr);
  if (!m) return addr;
  const host = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip.includes(':') ? `[${ip}]` : ip;
  return `${m[1] ?? ''}${host}${m[2]}`;
}

/**
 * `host:port` as a URL authority writes it (RFC 3986 3.2.2): an IPv6 host in
 * brackets (`[::1]:4222`), so the port can be told from the address. One
 * rule for every address a node or client shows, announces or dials: written
 * by hand, a node bound to `::` showed `:::4222` in `/v1/node` and `/v1/cluster`.
 * A host already in brackets is kept as it is.
 */
export function hostPort(host: string, port: number | string): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

import { ConfigError } from '@meshbus/core';

/** A host meaning every interface: what listens there can be reached at any of the machine's addresses. */
const WILDCARD_HOST = /^(0\.0\.0\.0|::|\[::\]|0:0:0:0:0:0:0:0)?$/;

/** True when `host` means every interface (WILDCARD_HOST). */
export function isWildcardHost(host: string): boolean {
  return WILDCARD_HOST.test(host);
}

/** What of a start's settings (StartConfig) says where it listens. */
interface ListenSettings {
  host: string;
  port: number;
  httpHost: string | undefined;
  httpPort: number | undefined;
  wsPort: number | undefined;
  clusterHost: string;
  clusterPort: number | undefined;
  workers: number;
}

/** The WebSocket gateway's default port (core/ws DEFAULT_WS_PORT, not imported: that loads the gateway). */
const DEFAULT_WS_PORT = 8481;

/**
 * The listeners of one `meshbus start` (a port of 0, or off, takes none). The
 * gateway on its default port is left out unless `defaultWs`: taken, it is
 * skipped with a warning (start.ts), so `--port 8481` alone still starts.
 */
function listeners(c: ListenSettings, defaultWs = false): Array<[flag: string, port: number | undefined, host: string]> {
  return [
    ['--port', c.port, c.host],
    ['--http-port', c.httpPort, c.httpHost ?? c.host],
    ['--ws-port', c.wsPort === DEFAULT_WS_PORT && !defaultWs ? undefined : c.wsPort, c.host],
    ['--cluster-port', c.clusterPort, c.clusterHost],
  ];
}

/** Two listeners on `a` and `b` can collide: the same address, or one of them every interface. */
const overlap = (a: string, b: string): boolean => a === b || isWildcardHost(a) || isWildcardHost(b);

/**
 * Ports of one start that would collide, said before any port opens.
 * `--http-port 8494 --ws-port 8494` failed once the node served, as "http
 * port 8494 on 127.0.0.1 is already in use": the node's own gateway had it.
 */
export function checkPorts(c: ListenSettings): void {
  const l = listeners(c);
  for (let i = 0; i < l.length; i++) {
    for (let j = i + 1; j < l.length; j++) {
      const [fa, pa, ha] = l[i]!;
      const [fb, pb, hb] = l[j]!;
      if (pa !== undefined && pa !== 0 && pa === pb && overlap(ha, hb)) throw new ConfigError(`${fa} and ${fb} are both ${pa}: each listener needs its own port`);
    }
  }
  if (c.workers > 1 && c.clusterPort) workerClusterPorts(c, c.clusterPort);
}

/**
 * `--workers N --cluster-port P`: worker i listens for peers on P+i. Said before any port opens (not by one
 * worker, after the others served, naming a port the user never gave): past 65535, or on the address and port
 * of the client port, the HTTP API or the WebSocket gateway.
 */
function workerClusterPorts(c: ListenSettings, p: number): void {
  const last = p + c.workers - 1;
  const what = `--cluster-port ${p} with --workers ${c.workers}: worker i listens on ${p}+i`;
  if (last > 65535) throw new ConfigError(`${what}, up to ${last}, past 65535`);
  // The workers' cluster ports are not listed (slice): the gateway's default port counts here, as it did.
  for (const [flag, port, host] of listeners(c, true).slice(0, 3)) {
    if (port !== undefined && port >= p && port <= last && overlap(host, c.clusterHost)) throw new ConfigError(`${what}: worker ${port - p} would take ${port}, the ${flag}`);
  }
}

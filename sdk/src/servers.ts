import { ClientError } from '@meshbus/proto';

/** Default TCP port of a meshbus node. */
export const DEFAULT_PORT = 4480;

export type Scheme = 'tcp' | 'tls' | 'ws' | 'wss';

/** A parsed server address. */
export interface ServerUrl {
  scheme: Scheme;
  /** Host name or IP address; IPv6 without brackets. */
  host: string;
  port: number;
  /** Path of a WebSocket URL ('/' when absent); '' for TCP. */
  path: string;
  /** Normalised form, e.g. `tcp://127.0.0.1:4480` or `ws://h:80/mb`: the identity of the server. */
  href: string;
}

const URL_RE = /^(?:([a-zA-Z][a-zA-Z0-9+.-]*):\/\/)?(\[[0-9a-fA-F:.]+\]|[^:/?#[\]\s]+)(?::(\d{1,5}))?(\/[^\s]*)?$/;

/**
 * Parses `meshbus://host:port`, `tcp://host:port`, `host:port`, `host`
 * (TCP, default port 4480), `tls://host:port` (TCP over TLS) and `ws://` / `wss://` URLs (ports 80/443 by
 * default, path kept). No URL global needed: React Native's is incomplete.
 */
export function parseServer(input: string): ServerUrl {
  if (typeof input !== 'string') throw new ClientError('MB_ERR_INVALID_ARGUMENT', `server must be a string, got ${typeof input}`);
  const m = URL_RE.exec(input.trim());
  if (!m) throw new ClientError('MB_ERR_INVALID_ARGUMENT', `invalid server URL "${input}"`);
  const rawScheme = (m[1] ?? 'tcp').toLowerCase();
  let scheme: Scheme;
  if (rawScheme === 'tcp' || rawScheme === 'meshbus') scheme = 'tcp';
  else if (rawScheme === 'tls' || rawScheme === 'meshbus+tls') scheme = 'tls';
  else if (rawScheme === 'ws' || rawScheme === 'wss') scheme = rawScheme;
  else throw new ClientError('MB_ERR_INVALID_ARGUMENT', `unsupported scheme "${rawScheme}" in "${input}"`);
  let host = m[2]!;
  const bracketed = host.startsWith('[');
  if (bracketed) host = host.slice(1, -1);
  const stream = scheme === 'tcp' || scheme === 'tls';
  const port = m[3] !== undefined ? Number(m[3]) : stream ? DEFAULT_PORT : scheme === 'ws' ? 80 : 443;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ClientError('MB_ERR_INVALID_ARGUMENT', `invalid port in "${input}"`);
  }
  if (stream && m[4] !== undefined && m[4] !== '/') {
    throw new ClientError('MB_ERR_INVALID_ARGUMENT', `a TCP server URL has no path: "${input}"`);
  }
  const path = stream ? '' : (m[4] ?? '/');
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { scheme, host, port, path, href: `${scheme}://${hostPart}:${port}${path}` };
}

interface Entry {
  url: ServerUrl;
  /** Learned from a node (WELCOME peers or GOODBYE), not given by the user. */
  learned: boolean;
  /** Skip this server on the next pick when another one is available (it said GOODBYE). */
  avoid: boolean;
}

/**
 * The servers a client may connect to: the user's list plus peers learned
 * from nodes. `next()` rotates through them so reconnects spread over the
 * whole list rather than hammering the first one.
 */
export class ServerPool {
  private entries: Entry[] = [];
  private cursor = 0;

  constructor(
    servers: string[],
    private readonly options: { randomize?: boolean; ignoreLearned?: boolean; supports?: (u: ServerUrl) => boolean } = {},
  ) {
    if (servers.length === 0) throw new ClientError('MB_ERR_INVALID_ARGUMENT', 'no server given');
    for (const s of servers) this.add(parseServer(s), false);
    if (options.randomize) shuffle(this.entries);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Every known server, user-given first. */
  list(): ServerUrl[] {
    return this.entries.map((e) => e.url);
  }

  /**
   * Adds servers announced by a node (WELCOME peers, GOODBYE reconnect).
   * Unparseable or unsupported URLs are skipped: a node must not be able to
   * break the client with a bad peer list. Returns the servers added.
   */
  learn(urls: readonly string[]): ServerUrl[] {
    if (this.options.ignoreLearned) return [];
    const added: ServerUrl[] = [];
    for (const s of urls) {
      let u: ServerUrl;
      try {
        u = parseServer(s);
      } catch {
        continue;
      }
      if (this.options.supports && !this.options.supports(u)) continue;
      if (this.add(u, true)) added.push(u);
    }
    return added;
  }

  /** Asks `next()` to pick another server than `href` while one exists (the node is draining). */
  avoid(href: string): void {
    for (const e of this.entries) e.avoid = e.url.href === href;
  }

  /** Moves `href` to be picked first next time (e.g. a GOODBYE redirect target). */
  prefer(href: string): void {
    const i = this.entries.findIndex((e) => e.url.href === href);
    if (i >= 0) this.cursor = i;
  }

  /** The next server to try, round-robin. */
  next(): ServerUrl {
    const n = this.entries.length;
    for (let k = 0; k < n; k++) {
      const e = this.entries[(this.cursor + k) % n]!;
      if (e.avoid && n > 1) {
        e.avoid = false;
        continue;
      }
      this.cursor = (this.cursor + k + 1) % n;
      return e.url;
    }
    const e = this.entries[this.cursor % n]!;
    e.avoid = false;
    this.cursor = (this.cursor + 1) % n;
    return e.url;
  }

  private add(url: ServerUrl, learned: boolean): boolean {
    if (this.entries.some((e) => e.url.href === url.href)) return false;
    this.entries.push({ url, learned, avoid: false });
    return true;
  }
}

function shuffle<T>(a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

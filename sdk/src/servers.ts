import { invalid } from './errors.js';

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
  if (typeof input !== 'string') throw invalid(`server must be a string, got ${typeof input}`);
  const m = URL_RE.exec(input.trim());
  if (!m) throw invalid(`invalid server URL "${input}"`);
  const rawScheme = (m[1] ?? 'tcp').toLowerCase();
  let scheme: Scheme;
  if (rawScheme === 'tcp' || rawScheme === 'meshbus') scheme = 'tcp';
  else if (rawScheme === 'tls' || rawScheme === 'meshbus+tls') scheme = 'tls';
  else if (rawScheme === 'ws' || rawScheme === 'wss') scheme = rawScheme;
  else throw invalid(`unsupported scheme "${rawScheme}" in "${input}"`);
  let host = m[2]!;
  const bracketed = host.startsWith('[');
  if (bracketed) host = host.slice(1, -1);
  const stream = scheme === 'tcp' || scheme === 'tls';
  const port = m[3] !== undefined ? Number(m[3]) : stream ? DEFAULT_PORT : scheme === 'ws' ? 80 : 443;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid(`invalid port in "${input}"`);
  }
  if (stream && m[4] !== undefined && m[4] !== '/') {
    throw invalid(`a TCP server URL has no path: "${input}"`);
  }
  const path = stream ? '' : (m[4] ?? '/');
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return { scheme, host, port, path, href: `${scheme}://${hostPart}:${port}${path}` };
}

/** True for the schemes whose bytes are encrypted (tls://, wss://). */
export function isSecure(u: ServerUrl): boolean {
  return u.scheme === 'tls' || u.scheme === 'wss';
}

/**
 * A server URL a node announced (WELCOME peers, GOODBYE reconnect). Heard
 * over an encrypted connection (`secure`), a plaintext URL is taken as the
 * encrypted one on the same host and port (tcp → tls, ws → wss): a node of
 * a TLS mesh announces its `host:port` (the TLS listener), and the client
 * must never send its token in the clear because a node (or its
 * configuration) named a plaintext address. Throws like parseServer.
 */
export function parseLearned(input: string, secure: boolean): ServerUrl {
  const u = parseServer(input);
  return !secure || isSecure(u) ? u : parseServer((u.scheme === 'tcp' ? 'tls' : 'wss') + u.href.slice(u.scheme.length));
}

/**
 * Most servers a client learns from nodes (WELCOME peers, GOODBYE reconnect),
 * the node's own `maxKnownPeers` default: a hostile node's list of millions
 * must not grow the pool, nor cost more than a bounded scan.
 */
export const MAX_LEARNED_SERVERS = 1024;

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
  /** hrefs of `entries`: a learned list is deduplicated in O(1) per URL. */
  private readonly hrefs = new Set<string>();
  private learnedCount = 0;
  private cursor = 0;

  constructor(
    servers: string[],
    private readonly options: { randomize?: boolean; ignoreLearned?: boolean; supports?: (u: ServerUrl) => boolean } = {},
  ) {
    if (servers.length === 0) throw invalid('no server given');
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
   * break the client with a bad peer list. At most MAX_LEARNED_SERVERS
   * learned servers are kept (the oldest make room) and only that many
   * entries of one list are read. `from`: the server that announced them
   * (heard over an encrypted connection, see parseLearned). `replace` (a
   * WELCOME's peers): learned servers not in a non-empty `urls` are
   * forgotten, except `from`; the user's servers always stay. Returns the servers added.
   */
  learn(urls: readonly string[], from?: ServerUrl, replace?: boolean): ServerUrl[] {
    if (this.options.ignoreLearned) return [];
    const secure = from !== undefined && isSecure(from);
    const got: ServerUrl[] = [];
    // Only the first MAX_LEARNED_SERVERS entries are read: the rest cannot be added anyway.
    const n = Math.min(urls.length, MAX_LEARNED_SERVERS);
    for (let i = 0; i < n; i++) {
      try {
        const u = parseLearned(urls[i]!, secure);
        if (!this.options.supports || this.options.supports(u)) got.push(u);
      } catch {
        // skipped
      }
    }
    if (replace && n) {
      // A WELCOME's peers are the mesh now: learned servers it no longer names go (not `from`, the one connected).
      // An empty list (a node alone, or that announces none) leaves them, as NATS clients do.
      const keep = new Set(got.map((u) => u.href));
      for (let i = this.entries.length; i--; ) {
        const e = this.entries[i]!;
        if (e.learned && e.url !== from && !keep.has(e.url.href)) this.drop(i);
      }
    }
    return got.filter((u) => this.add(u, true));
  }

  /** True when `href` (a normalised server URL) is in the pool. */
  has(href: string): boolean {
    return this.hrefs.has(href);
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
    if (this.hrefs.has(url.href)) return false;
    // Full: the oldest learned server makes room (the newest lists, e.g. a GOODBYE redirect, are the ones to follow).
    if (learned && this.learnedCount >= MAX_LEARNED_SERVERS) this.drop(this.entries.findIndex((e) => e.learned));
    this.hrefs.add(url.href);
    this.entries.push({ url, learned, avoid: false });
    if (learned) this.learnedCount++;
    return true;
  }

  /** Forgets learned entry `i` (none when -1), the cursor kept on the same next entry. */
  private drop(i: number): void {
    if (i < 0) return;
    this.hrefs.delete(this.entries[i]!.url.href);
    this.entries.splice(i, 1);
    this.learnedCount--;
    if (this.cursor > i) this.cursor--;
    if (this.cursor >= this.entries.length) this.cursor = 0;
  }
}

function shuffle<T>(a: T[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

// Parsing only: imported at node construction (store-config.ts), so it never loads ioredis.
import { ConfigError } from '../config-error.js';

/** host:port of one server (a cluster seed or a sentinel). */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Where the durable store lives, parsed from `durable.redis`:
 *
 * - `redis://[user:password@]host:port[/db]` (or `rediss://`): one server, as ioredis reads the URL.
 * - `redis-cluster://[user:password@]host:port[,host:port…]`: a Redis Cluster; the
 *   hosts are seeds (one reachable seed is enough, ioredis discovers the rest).
 * - `redis-sentinel://[user:password@]host:port[,host:port…]/<master name>[/db]`:
 *   the primary that the listed sentinels name `<master name>`; the credentials
 *   are the primary's (and its replicas'), the sentinels are reached without any.
 */
export type RedisTarget =
  | { kind: 'single'; url: string; db: number }
  | { kind: 'cluster'; nodes: HostPort[]; username?: string; password?: string }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; db: number; username?: string; password?: string };

const MULTI = /^redis-(cluster|sentinel):\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/([^?#]*))?$/;

/** Parses `durable.redis`; ConfigError naming the problem when it is none of the three forms. */
export function parseRedisTarget(url: string): RedisTarget {
  if (/^rediss?:\/\//.test(url)) return { kind: 'single', url, db: singleDb(url) };
  if (/^rediss-(cluster|sentinel):\/\//.test(url)) throw new ConfigError(`durable.redis: TLS to a Redis Cluster or through sentinels is not supported yet, got ${redactUrl(url)}`);
  const m = MULTI.exec(url);
  if (!m) {
    throw new ConfigError(
      `durable.redis must be redis://host:port[/db], redis-cluster://host:port[,host:port…] or redis-sentinel://host:port[,host:port…]/<master name>, got ${redactUrl(url)}`,
    );
  }
  const [, kind, auth, hostList, path = ''] = m;
  const hosts = hostList!.split(',').map((h) => parseHostPort(h, url));
  const cred = credentials(auth);
  if (kind === 'cluster') {
    if (path !== '') throw new ConfigError(`durable.redis: redis-cluster:// takes no path (a cluster has database 0 only), got ${redactUrl(url)}`);
    return { kind: 'cluster', nodes: hosts, ...cred };
  }
  const [name, db = '0', ...rest] = path.split('/');
  if (!name || rest.length > 0 || !/^\d+$/.test(db)) {
    throw new ConfigError(`durable.redis: redis-sentinel:// needs the master name as its path (…/mymaster, optionally …/mymaster/<db>), got ${redactUrl(url)}`);
  }
  return { kind: 'sentinel', sentinels: hosts, name: decodeURIComponent(name), db: Number(db), ...cred };
}

/**
 * The database of a `redis://` URL, checked as ioredis will read it: a URL
 * that does not parse, a port that is no number, or a path that is no
 * database number was found only once the node served (`Invalid URL`, exit 1)
 * or not at all (`/abc`: SELECT refused on every connection, the store
 * written to database 0).
 */
function singleDb(url: string): number {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`durable.redis: not a URL (redis://[user:password@]host:port[/db]), got ${redactUrl(url)}`);
  }
  // No host is localhost for ioredis (`redis:///5`: localhost, database 5); a database may be given as ?db=.
  const path = u.pathname.replace(/^\//, '') || (u.searchParams.get('db') ?? '');
  if (path === '') return 0;
  if (!/^\d{1,9}$/.test(path)) throw new ConfigError(`durable.redis: the path is the database number (redis://host:port/<db>), got ${redactUrl(url)}`);
  return Number(path);
}

function parseHostPort(s: string, url: string): HostPort {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(s.trim());
  const port = m?.[2] === undefined ? 6379 : Number(m[2]);
  if (!m || port < 1 || port > 65535) throw new ConfigError(`durable.redis: "${s}" is not host:port in ${redactUrl(url)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function credentials(auth: string | undefined): { username?: string; password?: string } {
  if (auth === undefined || auth === '') return {};
  const i = auth.indexOf(':');
  const user = decodeURIComponent(i < 0 ? auth : auth.slice(0, i));
  const password = i < 0 ? undefined : decodeURIComponent(auth.slice(i + 1));
  return { ...(user ? { username: user } : {}), ...(password !== undefined ? { password } : {}) };
}

/** The URL with its credentials masked, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

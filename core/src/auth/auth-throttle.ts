import { SessionError } from '@meshbus/proto';
import { ConfigError } from '../config-error.js';
import { RefreshWalks } from './refresh-walks.js';

/** How many failed authentications an address may make, and how much the throttle remembers. */
export interface AuthThrottleOptions {
  /** Failures an address may make in a burst before it is refused. Default 10. */
  maxFailures?: number;
  /** Time in which the whole allowance comes back, ms (one failure back every windowMs / maxFailures). Default 60,000. */
  windowMs?: number;
  /** Addresses remembered at most; past it the least recently failed is forgotten. Default 10,000. */
  maxAddresses?: number;
}

/** Which path an authentication came through, for the counters. */
export type AuthPath = 'client' | 'peer' | 'http';

interface Bucket {
  /** Failures still allowed (fractional while refilling). */
  tokens: number;
  /** When `tokens` was last brought up to date, ms. */
  at: number;
}

/**
 * The failed-authentication limiter every secret-checking path shares:
 * client HELLO/AUTH tokens (TCP and WebSocket), the cluster secret of peer
 * links and the HTTP API's admin token. Per remote address (IPv6: per /64,
 * what one host usually holds; peer links counted apart from the other two,
 * see bucketKey), a token bucket of `maxFailures` failures
 * refilled over `windowMs`; while it is empty the address is refused before
 * its secret is even looked at (MB_ERR_AUTH_THROTTLED, then close), so a
 * correct secret from it works again once the bucket refills. Memory is one
 * small entry per address that failed recently, at most `maxAddresses`
 * (the least recently failed is forgotten first; a full bucket is
 * forgotten as soon as it is seen). All methods are O(1).
 */
export class AuthThrottle {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxAddresses: number;
  /** Buckets by address key, least recently failed first (Map order). */
  private readonly buckets = new Map<string, Bucket>();
  /** Failed authentications per path, and attempts refused while throttled per path, since start. */
  readonly failures: Record<AuthPath, number> = { client: 0, peer: 0, http: 0 };
  readonly refused: Record<AuthPath, number> = { client: 0, peer: 0, http: 0 };
  /** What clients' AUTH refreshes may make the node check, per host (refresh-walks.ts). */
  readonly walks = new RefreshWalks();

  constructor(o: AuthThrottleOptions = {}) {
    this.maxFailures = o.maxFailures ?? 10;
    this.windowMs = o.windowMs ?? 60_000;
    this.maxAddresses = o.maxAddresses ?? 10_000;
    for (const [k, v] of [['maxFailures', this.maxFailures], ['windowMs', this.windowMs], ['maxAddresses', this.maxAddresses]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new ConfigError(`authThrottle.${k} must be a positive integer, got ${v}`);
    }
  }

  /** Addresses remembered now (≤ maxAddresses). */
  get size(): number {
    return this.buckets.size;
  }

  /**
   * The error to refuse `address` with (SessionError MB_ERR_AUTH_THROTTLED,
   * counted as refused on `path`) when it has no failures left, else
   * undefined. Call before looking at the secret.
   */
  refusal(address: string, path: AuthPath, now = Date.now()): SessionError | undefined {
    const b = this.current(bucketKey(address, path), now);
    if (b === undefined || b.tokens >= 1) return undefined;
    this.refused[path]++;
    const wait = Math.ceil(((1 - b.tokens) * this.windowMs) / this.maxFailures);
    return new SessionError('MB_ERR_AUTH_THROTTLED', `too many failed authentications from ${address}; retry in ${wait} ms`);
  }

  /** Records one failed authentication from `address` on `path`. */
  failed(address: string, path: AuthPath, now = Date.now()): void {
    this.failures[path]++;
    const key = bucketKey(address, path);
    const b = this.current(key, now) ?? { tokens: this.maxFailures, at: now };
    b.tokens = Math.max(0, b.tokens - 1);
    // Most recently failed last: eviction takes the first.
    this.buckets.delete(key);
    if (this.buckets.size >= this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(key, b);
  }

  /** The bucket of `key` refilled to `now`; undefined (and forgotten) when it is full again or unknown. */
  private current(key: string, now: number): Bucket | undefined {
    const b = this.buckets.get(key);
    if (b === undefined) return undefined;
    if (now > b.at) {
      b.tokens = Math.min(this.maxFailures, b.tokens + ((now - b.at) * this.maxFailures) / this.windowMs);
      b.at = now;
    }
    if (b.tokens >= this.maxFailures) {
      this.buckets.delete(key);
      return undefined;
    }
    return b;
  }
}

/**
 * The bucket of `address` on `path`: clients and the HTTP API share one per
 * address; peer links (the cluster port, usually private) have their own, so
 * failed client tokens from an address a leaf or peer shares (a NAT, a proxy,
 * the same host) never lock that node out of the mesh, and the other way round.
 */
function bucketKey(address: string, path: AuthPath): string {
  return path === 'peer' ? `peer ${addressKey(address)}` : addressKey(address);
}

/**
 * The throttle key of a remote address: IPv4 as is (an IPv4-mapped IPv6
 * address as its IPv4), IPv6 by its first 64 bits, so one host cannot
 * rotate through the addresses of its own subnet to reset its count.
 */
export function addressKey(address: string): string {
  const a = address.toLowerCase();
  if (!a.includes(':')) return a;
  if (a.startsWith('::ffff:') && a.includes('.')) return a.slice(7);
  const [head = '', tail] = a.split('::', 2);
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** The address part of a transport's `remote` ("<address>:<port>", IPv6 unbracketed). */
export function remoteAddress(remote: string): string {
  const i = remote.lastIndexOf(':');
  return i < 0 ? remote : remote.slice(0, i);
}

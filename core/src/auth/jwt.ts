import { createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { SessionError } from '@meshbus/proto';

/** Keys a node accepts client tokens from. One or both may be set. */
export interface JwtKeys {
  /** Shared secret for HS256 tokens. */
  hs256Secret?: string;
  /** Ed25519 public key (PEM) for EdDSA tokens. */
  ed25519PublicKey?: string;
}

/** Topic allow and deny lists (wildcards allowed); deny wins. */
export interface TopicRules {
  allow?: string[];
  deny?: string[];
}

/** The claims meshbus reads from a token. */
export interface TokenClaims {
  sub: string;
  /** Expiry, seconds since the epoch. */
  exp?: number;
  /** Issued at, seconds since the epoch (used with the node's maxTokenLifetime). */
  iat?: number;
  nbf?: number;
  /** Per-topic permissions; absent: everything allowed. */
  permissions?: { publish?: TopicRules; subscribe?: TopicRules };
}

/** Tolerated clock difference for `nbf`, seconds. Expiry is exact, so a handshake and a live connection agree. */
const LEEWAY = 5;

function b64urlDecode(s: string): Buffer {
  return Buffer.from(s, 'base64url');
}

function bad(detail: string): SessionError {
  return new SessionError('MB_ERR_AUTH_FAILED', detail);
}

/**
 * Verifies a compact JWS (HS256 or EdDSA) and returns its claims. Throws
 * SessionError MB_ERR_AUTH_FAILED for a malformed or badly signed token and
 * MB_ERR_TOKEN_EXPIRED for an expired one. No dependency: node:crypto does
 * both algorithms, and "alg" must match a configured key (never "none").
 */
export class JwtVerifier {
  private readonly hmacKey: Buffer | undefined;
  private readonly edKey: KeyObject | undefined;

  constructor(keys: JwtKeys) {
    this.hmacKey = keys.hs256Secret !== undefined ? Buffer.from(keys.hs256Secret) : undefined;
    this.edKey = keys.ed25519PublicKey !== undefined ? createPublicKey(keys.ed25519PublicKey) : undefined;
  }

  verify(token: string, nowMs = Date.now()): TokenClaims {
    const parts = token.split('.');
    if (parts.length !== 3) throw bad('token is not a JWT');
    const [h, p, sig] = parts as [string, string, string];
    let header: { alg?: unknown; typ?: unknown };
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(b64urlDecode(h).toString('utf8'));
      claims = JSON.parse(b64urlDecode(p).toString('utf8'));
    } catch {
      throw bad('token header or payload is not JSON');
    }
    const signed = Buffer.from(`${h}.${p}`);
    const signature = b64urlDecode(sig);
    if (header.alg === 'HS256' && this.hmacKey) {
      const want = createHmac('sha256', this.hmacKey).update(signed).digest();
      if (want.length !== signature.length || !timingSafeEqual(want, signature)) throw bad('bad token signature');
    } else if (header.alg === 'EdDSA' && this.edKey) {
      if (!verify(null, signed, this.edKey, signature)) throw bad('bad token signature');
    } else {
      throw bad(`token algorithm ${JSON.stringify(header.alg)} is not accepted by this node`);
    }
    if (typeof claims !== 'object' || claims === null || typeof claims.sub !== 'string') throw bad('token has no subject');
    const now = nowMs / 1000;
    if (claims.exp !== undefined && (typeof claims.exp !== 'number' || claims.exp <= now)) {
      throw new SessionError('MB_ERR_TOKEN_EXPIRED', `token of ${claims.sub} expired`);
    }
    if (claims.iat !== undefined && (typeof claims.iat !== 'number' || !Number.isFinite(claims.iat))) throw bad('token iat must be a number');
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf - LEEWAY > now)) throw bad('token not valid yet');
    const perms = claims.permissions;
    if (perms !== undefined) checkPermissions(perms);
    return claims as unknown as TokenClaims;
  }
}

function checkPermissions(v: unknown): void {
  if (typeof v !== 'object' || v === null) throw bad('permissions must be an object');
  for (const side of ['publish', 'subscribe'] as const) {
    const r = (v as Record<string, unknown>)[side];
    if (r === undefined) continue;
    if (typeof r !== 'object' || r === null) throw bad(`permissions.${side} must be an object`);
    for (const k of ['allow', 'deny'] as const) {
      const list = (r as Record<string, unknown>)[k];
      if (list !== undefined && (!Array.isArray(list) || !list.every((x) => typeof x === 'string'))) {
        throw bad(`permissions.${side}.${k} must be a list of topic patterns`);
      }
    }
  }
}

/** Signs claims as an HS256 JWT: for tests, tools and token services written in Node. */
export function signHs256(claims: TokenClaims | Record<string, unknown>, secret: string): string {
  const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const p = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const s = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
}

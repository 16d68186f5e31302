import { createHmac, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import type { CompactJWSHeaderParameters, CryptoKey, FlattenedJWSInput, JWTVerifyGetKey, RemoteJWKSet } from 'jose';
import { SessionError, thrownText } from '@meshbus/proto';
import { JwksFile } from './jwks-file.js';
import { loadJose, type Jose } from './jose-loader.js';
import { permissionRules, type PermissionRules } from './permission-claim.js';
import { KEY_LOOKUP_TIMEOUT_MS, keysUnavailable } from './keys-unavailable.js';
import { jwksFetch } from './jwks-fetch.js';

/**
 * Keys a node accepts client tokens from, and the claims it insists on. At
 * least one key source (secret, public key, JWKS URL or JWKS file) is set.
 */
export interface JwtKeys {
  /** Shared secret for HS256 tokens. */
  hs256Secret?: string;
  /** Ed25519 public key (PEM) for EdDSA tokens. */
  ed25519PublicKey?: string;
  /**
   * JWKS URL (http or https): asymmetric keys chosen by the token's `kid`
   * and `alg`. Fetched on first use, cached `jwksCacheMaxAge` seconds, and
   * fetched again when a token names an unknown `kid` (at most once per
   * `jwksCooldown` seconds): a new signing key is accepted as soon as it is
   * published, a removed one is refused once the cache expires.
   */
  jwksUrl?: string;
  /**
   * JWKS file: like jwksUrl, read from disk; read again when its size or
   * modification time changes (checked at every verification) and when a
   * token names an unknown `kid`. Not together with jwksUrl.
   */
  jwksFile?: string;
  /** Seconds a fetched JWKS is trusted before it is fetched again. Default 600. */
  jwksCacheMaxAge?: number;
  /** Seconds between fetches caused by unknown `kid`s. Default 30. */
  jwksCooldown?: number;
  /** Accepted `aud` value(s): a token must name one of them. Absent: `aud` is not checked. */
  audience?: string | string[];
  /** Accepted `iss` value(s): a token must have one of them. Absent: `iss` is not checked. */
  issuer?: string | string[];
  /**
   * Longest validity a token may claim, seconds; 0 or absent: no limit. When
   * set, a token needs `exp`, and one whose `exp − iat` or `exp − now` is
   * longer is refused (MB_ERR_AUTH_FAILED): a token service cannot mint
   * tokens that outlive the operator's rule. (`maxTokenLifetime` instead
   * bounds how long a connection goes on without a fresh HELLO or AUTH: a
   * token without `iat` is trusted anew at each.)
   */
  maxTtl?: number;
}

// Defined with the claim's checks (permission-claim.ts), which jwt.ts calls: one direction of import.
export type { TopicRules } from './permission-claim.js';

/** The claims meshbus reads from a token. */
export interface TokenClaims {
  sub: string;
  /** Expiry, seconds since the epoch. */
  exp?: number;
  /** Issued at, seconds since the epoch (used with the node's maxTokenLifetime). */
  iat?: number;
  nbf?: number;
  aud?: string | string[];
  iss?: string;
  /** Per-topic permissions; absent: everything allowed. A malformed claim refuses the token (permission-claim.ts). */
  permissions?: PermissionRules;
}

/** Tolerated clock difference for `nbf`, seconds. Expiry is exact, so a handshake and a live connection agree. */
const LEEWAY = 5;

/** Algorithms accepted from JWKS keys: asymmetric only, so a public key can never be used as an HMAC secret. */
const JWKS_ALGS = ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

function bad(detail: string): SessionError {
  return new SessionError('MB_ERR_AUTH_FAILED', detail);
}

/**
 * Verifies compact JWS tokens through `jose` and returns their claims.
 * Rejects with SessionError MB_ERR_TOKEN_EXPIRED for an expired token,
 * MB_ERR_NOT_READY when the node's own key source failed and the token could
 * not be checked (keys-unavailable.ts), and MB_ERR_AUTH_FAILED for anything
 * else (malformed, bad signature, unknown key or algorithm, `aud`/`iss`
 * mismatch, validity over `maxTtl`, a malformed `permissions` claim). "alg"
 * must match the kind of key it is checked with: HS256 only with the
 * secret, asymmetric algorithms only with public keys, never "none".
 */
export class JwtVerifier {
  private readonly hmacSecret: Uint8Array | undefined;
  /** The secret imported once as a WebCrypto key: jose would import a raw secret again for every token. */
  private hmacKey: CryptoKey | undefined;
  private readonly edKey: KeyObject | undefined;
  private remote: RemoteJWKSet | undefined;
  private file: JwksFile | undefined;
  private readonly algorithms: string[];
  private readonly resolve: JWTVerifyGetKey;
  /** jose and the JWKS resolvers, set up at the first verification: a node without client tokens never loads jose. */
  private jose: Promise<Jose> | undefined;

  constructor(private readonly keys: JwtKeys) {
    this.hmacSecret = keys.hs256Secret !== undefined ? new TextEncoder().encode(keys.hs256Secret) : undefined;
    this.edKey = keys.ed25519PublicKey !== undefined ? createPublicKey(keys.ed25519PublicKey) : undefined;
    const algs = new Set<string>();
    if (this.hmacSecret) algs.add('HS256');
    if (this.edKey) algs.add('EdDSA');
    if (keys.jwksUrl !== undefined || keys.jwksFile !== undefined) for (const a of JWKS_ALGS) algs.add(a);
    this.algorithms = [...algs];
    this.resolve = (header, token) => this.keyFor(header, token);
  }

  private setup(): Promise<Jose> {
    this.jose ??= loadJose().then(async (jose) => {
      const k = this.keys;
      if (this.hmacSecret) this.hmacKey = (await webcrypto.subtle.importKey('raw', this.hmacSecret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])) as CryptoKey;
      if (k.jwksUrl !== undefined) {
        this.remote = jose.createRemoteJWKSet(new URL(k.jwksUrl), {
          cacheMaxAge: (k.jwksCacheMaxAge ?? 600) * 1000,
          cooldownDuration: (k.jwksCooldown ?? 30) * 1000,
          timeoutDuration: KEY_LOOKUP_TIMEOUT_MS,
          [jose.customFetch]: jwksFetch(),
        });
      }
      if (k.jwksFile !== undefined) this.file = new JwksFile(k.jwksFile, jose);
      return jose;
    });
    return this.jose;
  }

  /** Picks the key a token is checked with, from its header. */
  private keyFor(header: CompactJWSHeaderParameters, token: FlattenedJWSInput): ReturnType<JWTVerifyGetKey> {
    const jwks = this.remote ?? this.file;
    if (header.alg === 'HS256') {
      if (this.hmacKey) return this.hmacKey;
    } else if (this.edKey && (header.alg === 'EdDSA' || header.alg === 'Ed25519') && (header.kid === undefined || !jwks)) {
      return this.edKey;
    } else if (this.file) {
      return jwksKey(this.file.key(header, token), false);
    } else if (this.remote) {
      // Captured before the lookup, which may fetch: only then does "no matching key" mean "not published".
      const mayNotRefetch = this.remote.coolingDown && this.remote.fresh;
      return jwksKey(this.remote(header, token), mayNotRefetch);
    }
    throw bad(`token algorithm ${JSON.stringify(header.alg)} is not accepted by this node`);
  }

  /** The token's claims; rejects as the class says. `nowMs` is the clock (ms since the epoch). */
  async verify(token: string, nowMs = Date.now()): Promise<TokenClaims> {
    const now = nowMs / 1000;
    let claims: Record<string, unknown>;
    const jose = await this.setup().catch((e: unknown) => {
      throw keysUnavailable(`jose cannot be loaded: ${thrownText(e)}`, e);
    });
    try {
      const r = await jose.jwtVerify(token, this.resolve, {
        algorithms: this.algorithms,
        audience: this.keys.audience,
        issuer: this.keys.issuer,
        clockTolerance: LEEWAY,
        currentDate: new Date(nowMs),
      });
      claims = r.payload as Record<string, unknown>;
    } catch (e) {
      throw translate(e);
    }
    if (typeof claims.sub !== 'string') throw bad('token has no subject');
    // jose tolerates LEEWAY on exp too; meshbus's expiry is exact.
    if (typeof claims.exp === 'number' && claims.exp <= now) throw new SessionError('MB_ERR_TOKEN_EXPIRED', `token of ${claims.sub} expired`);
    const maxTtl = this.keys.maxTtl ?? 0;
    if (maxTtl > 0) checkTtl(claims, maxTtl, now);
    if (claims.permissions !== undefined) claims.permissions = permissionRules(claims.permissions);
    return claims as unknown as TokenClaims;
  }
}

/** What is wrong with `k` (a message for ConfigError), or undefined when a verifier can be built from it. */
export function jwtKeysProblem(k: JwtKeys): string | undefined {
  if (k.hs256Secret === undefined && k.ed25519PublicKey === undefined && k.jwksUrl === undefined && k.jwksFile === undefined) {
    return 'jwt needs hs256Secret, ed25519PublicKey, jwksUrl or jwksFile';
  }
  if (k.jwksUrl !== undefined && k.jwksFile !== undefined) return 'jwt.jwksUrl and jwt.jwksFile cannot both be set';
  if (k.ed25519PublicKey !== undefined) {
    try {
      if (createPublicKey(k.ed25519PublicKey).asymmetricKeyType !== 'ed25519') return 'jwt.ed25519PublicKey is not an Ed25519 key';
    } catch (e) {
      return `jwt.ed25519PublicKey is not a PEM public key: ${(e as Error).message}`;
    }
  }
  if (k.jwksUrl !== undefined && !/^https?:\/\/[^/]/.test(k.jwksUrl)) return `jwt.jwksUrl must be an http(s) URL, got ${k.jwksUrl}`;
  for (const n of ['jwksCacheMaxAge', 'jwksCooldown', 'maxTtl'] as const) {
    const v = k[n];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) return `jwt.${n} must be a number of seconds >= 0, got ${v}`;
  }
  return undefined;
}

/** jose's JWKS errors that say the token is wrong, not the key source: they stay failed authentications. */
const TOKEN_FAULTS = new Set(['ERR_JWKS_NO_MATCHING_KEY', 'ERR_JWKS_MULTIPLE_MATCHING_KEYS', 'ERR_JOSE_NOT_SUPPORTED', 'ERR_JOSE_ALG_NOT_ALLOWED']);

/**
 * A JWKS lookup bounded by KEY_LOOKUP_TIMEOUT_MS, its failures sorted: the
 * token's (no key for its kid and alg, once the JWKS could be fetched again
 * for it) pass on to translate (MB_ERR_AUTH_FAILED); the key source's
 * (unreachable, an HTTP error, not a JWKS, a file unreadable, too slow, an
 * unknown kid while it may not be fetched again: `mayNotRefetch`) become
 * keysUnavailable, so a client is never charged for the node's outage.
 */
async function jwksKey<K>(lookup: Promise<K>, mayNotRefetch: boolean): Promise<K> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(keysUnavailable(`the JWKS gave no key within ${KEY_LOOKUP_TIMEOUT_MS} ms`)), KEY_LOOKUP_TIMEOUT_MS);
    timer.unref?.();
  });
  try {
    return await Promise.race([lookup, late]);
  } catch (e) {
    if (e instanceof SessionError) throw e;
    const code = (e as { code?: unknown }).code;
    if (code === 'ERR_JWKS_NO_MATCHING_KEY' && mayNotRefetch) {
      throw keysUnavailable('no key of the JWKS matches the token, and the JWKS was fetched too recently (jwksCooldown) to fetch it again', e);
    }
    if (typeof code === 'string' && TOKEN_FAULTS.has(code)) throw e;
    throw keysUnavailable(`the JWKS cannot be fetched: ${e instanceof Error ? e.message : thrownText(e)}`, e);
  } finally {
    clearTimeout(timer);
  }
}

/** jose's errors (by their stable `code`) and anything else → a SessionError with a meshbus code. */
function translate(e: unknown): SessionError {
  if (e instanceof SessionError) return e;
  const code = (e as { code?: unknown }).code;
  const msg = e instanceof Error ? e.message : thrownText(e);
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return new SessionError('MB_ERR_TOKEN_EXPIRED', `token of ${String((e as { payload?: { sub?: unknown } }).payload?.sub)} expired`);
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return bad(`token claim ${String((e as { claim?: unknown }).claim)} refused: ${msg}`);
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return bad('bad token signature');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return bad(`token algorithm is not accepted by this node: ${msg}`);
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return bad('no key of the JWKS matches the token (kid, alg)');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return bad(/Compact JWS/.test(msg) ? 'token is not a JWT' : `token is malformed: ${msg}`);
  }
  return bad(typeof code === 'string' ? `${code}: ${msg}` : `token refused: ${msg}`);
}

function checkTtl(claims: Record<string, unknown>, maxTtl: number, now: number): void {
  const { exp, iat } = claims;
  if (typeof exp !== 'number') throw bad(`token has no exp; this node accepts tokens valid at most ${maxTtl} s`);
  if (typeof iat === 'number' && exp - iat > maxTtl) throw bad(`token is valid for ${exp - iat} s (exp - iat), more than the ${maxTtl} s this node accepts`);
  if (exp - now > maxTtl) throw bad(`token expires in ${Math.ceil(exp - now)} s, more than the ${maxTtl} s this node accepts`);
}

/** Signs claims as an HS256 JWT, synchronously: for tests and tools written in Node (`mintToken` signs with any key). */
export function signHs256(claims: TokenClaims | Record<string, unknown>, secret: string): string {
  const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const p = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const s = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
  return `${h}.${p}.${s}`;
}

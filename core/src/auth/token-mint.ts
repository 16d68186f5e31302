import { createPrivateKey, type KeyObject } from 'node:crypto';
import { ConfigError } from '../config-error.js';
import type { TopicRules } from './permission-claim.js';
import { loadJose } from './jose-loader.js';
import { permissionRules } from './permission-claim.js';

/** What `mintToken` signs. Times are seconds. */
export interface MintOptions {
  /** Token subject (`sub`). */
  sub: string;
  /** HS256 secret; or `privateKey`. */
  secret?: string;
  /** Private key, PEM (PKCS#8 or traditional): Ed25519 → EdDSA, P-256/384/521 → ES256/384/512, RSA → RS256. */
  privateKey?: string;
  /** `kid` header, naming the key in a JWKS. */
  kid?: string;
  /** Validity from now, seconds; 0 or absent: no `exp`. */
  ttl?: number;
  /** Publish / subscribe rules (the `permissions` claim); absent: everything allowed. */
  publish?: TopicRules;
  subscribe?: TopicRules;
  audience?: string;
  issuer?: string;
  /** Clock, ms since the epoch (tests). */
  nowMs?: number;
}

const EC_ALG: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

/** The JWS algorithm a private key signs with; ConfigError for a kind of key nodes do not accept. */
function algFor(key: KeyObject): string {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'rsa') return 'RS256';
  if (key.asymmetricKeyType === 'ec') {
    const alg = EC_ALG[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (alg) return alg;
  }
  throw new ConfigError(`private key of type ${String(key.asymmetricKeyType)} cannot sign meshbus tokens (Ed25519, EC P-256/384/521 or RSA)`);
}

/**
 * Signs a meshbus client token (JWT) with `jose`: `sub`, `iat`, `exp` (when
 * `ttl`), `aud`, `iss` and the `permissions` claim nodes enforce. For
 * development and token services written in Node. Throws ConfigError
 * without exactly one of `secret` / `privateKey`, for an unusable key, or
 * for rules nodes would refuse (permission-claim.ts).
 */
export async function mintToken(o: MintOptions): Promise<string> {
  if ((o.secret === undefined) === (o.privateKey === undefined)) throw new ConfigError('mintToken needs exactly one of secret and privateKey');
  const now = Math.floor((o.nowMs ?? Date.now()) / 1000);
  const permissions: { publish?: TopicRules; subscribe?: TopicRules } = {};
  if (o.publish) permissions.publish = o.publish;
  if (o.subscribe) permissions.subscribe = o.subscribe;
  try {
    permissionRules(permissions);
  } catch (e) {
    // Nodes refuse such a token: better said here than at every HELLO.
    throw new ConfigError(`cannot mint a token nodes would refuse: ${(e as Error).message}`);
  }
  const { SignJWT } = await loadJose();
  const jwt = new SignJWT(Object.keys(permissions).length > 0 ? { permissions } : {}).setSubject(o.sub).setIssuedAt(now);
  if (o.ttl !== undefined && o.ttl > 0) jwt.setExpirationTime(now + o.ttl);
  if (o.audience !== undefined) jwt.setAudience(o.audience);
  if (o.issuer !== undefined) jwt.setIssuer(o.issuer);
  if (o.secret !== undefined) {
    jwt.setProtectedHeader({ alg: 'HS256', typ: 'JWT', ...(o.kid !== undefined ? { kid: o.kid } : {}) });
    return jwt.sign(new TextEncoder().encode(o.secret));
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(o.privateKey!);
  } catch (e) {
    throw new ConfigError(`cannot read the private key: ${(e as Error).message}`);
  }
  jwt.setProtectedHeader({ alg: algFor(key), typ: 'JWT', ...(o.kid !== undefined ? { kid: o.kid } : {}) });
  return jwt.sign(key);
}

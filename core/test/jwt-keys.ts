import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

/** A signing key of a test's JWKS: its private half and its public JWK (with kid, alg and use). */
export interface TestKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

/** A fresh key pair for `alg`, its public half as a JWK named `kid`. */
export async function testKey(kid: string, alg: 'EdDSA' | 'ES256' | 'RS256' = 'ES256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** A JWT of `claims` signed with `k` (its alg and kid in the header). */
export function signWith(k: TestKey, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: k.jwk.alg!, kid: k.kid }).sign(k.privateKey);
}

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The peer-link challenge: each side sends a fresh nonce and proves it knows
 * the shared secret by an HMAC-SHA256 over both nonces, both node ids and its
 * role, so a proof cannot be replayed on another link or reflected back.
 * Without a secret the proof is empty and only accepted by nodes that have
 * no secret either.
 */
export function newNonce(): string {
  return randomBytes(16).toString('hex');
}

export function proof(secret: string | undefined, role: 'dialer' | 'acceptor', dialerNonce: string, acceptorNonce: string, dialerId: string, acceptorId: string): string {
  if (secret === undefined) return '';
  return createHmac('sha256', secret).update(`meshbus-peer-v1|${role}|${dialerNonce}|${acceptorNonce}|${dialerId}|${acceptorId}`).digest('hex');
}

export function proofMatches(expected: string, got: unknown): boolean {
  if (typeof got !== 'string' || got.length !== expected.length) return false;
  if (expected.length === 0) return true;
  return timingSafeEqual(Buffer.from(expected), Buffer.from(got));
}

/**
 * What a failed challenge tells the operator (both ends log it): the fix, and
 * whether this node has a secret at all. `linkSecret` is the one the link
 * used: a leaf key's (leaf-keys.ts) when it is not the cluster secret.
 */
export function secretMismatch(s: { secret: string | undefined; leafKeySecret?: string }, linkSecret: string | undefined): string {
  if (linkSecret !== undefined && linkSecret !== s.secret) {
    return 'peer failed the leaf key challenge: a hub checks a leaf key against its --cluster-secret (issue the key with `meshbus leaf-key <label>` under that secret)';
  }
  return `peer failed the cluster secret challenge: every node of a mesh needs the same --cluster-secret (this node has ${s.secret !== undefined ? 'one' : 'none'})`;
}

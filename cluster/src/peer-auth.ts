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

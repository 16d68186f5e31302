import { randomBytes } from 'node:crypto';

/** A random 64-bit id as 16 hex digits: node ids and client ids. */
export function randomId(): string {
  return randomBytes(8).toString('hex');
}

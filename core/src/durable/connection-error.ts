/** Error codes and messages of a lost Redis connection: the outage, which durability.ts also says ('redis connection lost'). */
import { thrownText } from '@meshbus/proto';
const CONNECTION_CODES = /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN)$/;
// 'redis not reachable': the node's own StoreError for it (work-queue.ts), said the same way again rather than nested in itself.
const CONNECTION_MESSAGES = /Connection is closed|Stream isn't writeable|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|redis not reachable/;

/** True when `e` says the Redis connection is lost (one kind of error for the logs, however many connections say it). */
export function connectionError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (typeof code === 'string' && CONNECTION_CODES.test(code)) || CONNECTION_MESSAGES.test(thrownText(e));
}

/**
 * True when Redis answered WRONGTYPE: a key the node owns holds another
 * Redis type (written by someone else: Redis is shared). Corrupt store data
 * (SPEC 15.7), not an outage: the node's scripts replace such keys, and one
 * that still reaches a caller is said so, never as "store unavailable".
 */
export function wrongType(e: unknown): boolean {
  return /\bWRONGTYPE\b/.test(thrownText(e));
}

/**
 * What a client is told when a durable operation failed with `e`: a lost
 * connection in plain words ("redis not reachable"), else the store's own
 * message (a newcomer review read "Stream isn't writeable and
 * enableOfflineQueue options is false" in a NACK, then in the log).
 */
export function storeFailure(e: unknown): string {
  if (connectionError(e)) return 'redis not reachable';
  if (wrongType(e)) return `store data corrupt: a redis key holds the wrong type (${String((e as Error)?.message ?? e).slice(0, 200)}); retrying does not help until it is removed`;
  const text = String((e as Error)?.message ?? e);
  // ioredis's commandTimeout (the command connection's store deadline, writeTimeoutMs), in the words withinDeadline uses.
  return text === 'Command timed out' ? 'redis did not answer within the store deadline (writeTimeoutMs)' : text;
}

/**
 * The log fields of a store failure: `err` in the words a client is told
 * (storeFailure), and the driver's own text as `driver` when that differs
 * (for whoever debugs the Redis client, not the first thing an operator reads).
 */
export function storeErr(e: unknown): { err: string; driver?: string } {
  const said = storeFailure(e);
  const text = String((e as Error)?.message ?? e);
  return said === text ? { err: said } : { err: said, driver: text };
}

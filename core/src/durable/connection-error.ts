/** Error codes and messages of a lost Redis connection: the outage, which durability.ts also says ('redis connection lost'). */
import { StoreError, thrownText } from '@meshbus/proto';
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
 * A key the node needs holds another Redis type, and the node does not
 * replace it (SPEC 15.7): the set `<prefix>queues` every node reads its
 * queues from, and BullMQ's own keys (a queue's lists, sorted sets, meta
 * hash...), whose replacement would lose jobs or break BullMQ's scripts.
 * Nothing cures it but an operator removing the key: answered
 * MB_ERR_STORE_CORRUPT (4010: store data the node cannot use), not
 * MB_ERR_STORE_UNAVAILABLE (4001), which tells a client to retry and an
 * operator to look at Redis's health. The node's log names the key (found
 * by key-conflict.ts) and how to remove it; a client is told what kind of
 * key it is, never its name: names carry the node's key prefix and a work
 * queue's pattern and group, which a client may not know (another client's,
 * as JobQuota's refusal keeps them). Before: 4001, with a text naming no key
 * (Redis's WRONGTYPE names none).
 */
export class StoreKeyConflict extends StoreError {
  /** What a client is told (storeFailure): without the code's own text, and without the key's name. */
  readonly detail: string;

  constructor(
    readonly key: string,
    readonly found: string,
    readonly expected: string,
    /** What the key is to the node (a queue's BullMQ data, the queue set). */
    what: string,
  ) {
    super('MB_ERR_STORE_CORRUPT', `redis key "${key}" holds a ${found}, not the ${expected} of ${what}; the node does not replace it: an operator must remove it (DEL ${key}); until then this fails the same way`);
    this.detail = `a redis key of ${what} holds a ${found}, not a ${expected}; the node does not replace it: an operator must remove it (the node's log names the key); until then this fails the same way`;
  }
}

/** The code a durable operation that failed with `e` is refused with: 4010 for a key only an operator can remove, else 4001. */
export function storeCode(e: unknown): 'MB_ERR_STORE_UNAVAILABLE' | 'MB_ERR_STORE_CORRUPT' {
  return e instanceof StoreKeyConflict ? 'MB_ERR_STORE_CORRUPT' : 'MB_ERR_STORE_UNAVAILABLE';
}

/**
 * What a client is told when a durable operation failed with `e`: a lost
 * connection in plain words ("redis not reachable"), else the store's own
 * message (a newcomer review read "Stream isn't writeable and
 * enableOfflineQueue options is false" in a NACK, then in the log).
 */
export function storeFailure(e: unknown): string {
  if (e instanceof StoreKeyConflict) return e.detail;
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
export function storeErr(e: unknown): { err: string; driver?: string; key?: string } {
  const said = storeFailure(e);
  // Named for the operator who must remove it, whether or not the client was told.
  if (e instanceof StoreKeyConflict) return { err: said, key: e.key };
  const text = String((e as Error)?.message ?? e);
  return said === text ? { err: said } : { err: said, driver: text };
}

import type { RedisClient } from './redis-connect.js';
import { StoreKeyConflict, wrongType } from './connection-error.js';
import { withinDeadline } from './store-deadline.js';

/*
 * Which key a WRONGTYPE is about: Redis's error names none, and a client or
 * an operator told "a key holds the wrong type" cannot act on it.
 */

/** A key and the Redis type the node keeps there. */
export type ExpectedKey = readonly [key: string, type: string];

/** The keys of BullMQ queue `name` (prefix `bullPrefix`) a job add, move or read touches, with their types (BullMQ 5). */
export function bullKeys(bullPrefix: string, name: string): ExpectedKey[] {
  const k = `${bullPrefix}:${name}`;
  return [
    [`${k}:wait`, 'list'],
    [`${k}:paused`, 'list'],
    [`${k}:active`, 'list'],
    [`${k}:prioritized`, 'zset'],
    [`${k}:delayed`, 'zset'],
    [`${k}:completed`, 'zset'],
    [`${k}:failed`, 'zset'],
    [`${k}:waiting-children`, 'zset'],
    [`${k}:marker`, 'zset'],
    [`${k}:stalled`, 'set'],
    [`${k}:meta`, 'hash'],
    [`${k}:id`, 'string'],
    [`${k}:pc`, 'string'],
    [`${k}:events`, 'stream'],
  ];
}

/**
 * `e` as it should reach a client: a WRONGTYPE that one of `keys` explains
 * (the first whose type is neither its own nor absent) becomes a
 * StoreKeyConflict naming it (to the log only, with `keyHidden`);
 * anything else, or a probe that fails or finds nothing, is `e` unchanged. Only on a WRONGTYPE, so the TYPE
 * probes cost nothing otherwise; bounded by `deadlineMs`.
 */
export async function explained(e: unknown, redis: RedisClient, keys: readonly ExpectedKey[], what: string, deadlineMs: number, keyHidden = false): Promise<unknown> {
  if (!wrongType(e)) return e;
  try {
    const types = await withinDeadline(Promise.all(keys.map(([key]) => redis.type(key))), deadlineMs, 'the key type check');
    const i = types.findIndex((t, j) => t !== 'none' && t !== keys[j]![1]);
    return i < 0 ? e : new StoreKeyConflict(keys[i]![0], types[i]!, keys[i]![1], what, keyHidden);
  } catch {
    return e;
  }
}

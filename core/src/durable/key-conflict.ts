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

/** A found conflict: the key, the type it holds, the type the node keeps there. */
type Found = readonly [key: string, found: string, expected: string] | undefined;

/** How long a probe's finding stands for the same keys: failures in a burst share one probe. */
const PROBE_EVERY_MS = 5_000;
/** Findings kept per Redis connection (key lists: one per queue set or group of queues), cleared past it. */
const MAX_FINDINGS = 256;
const findings = new WeakMap<RedisClient, Map<string, { at: number; found: Promise<Found> }>>();

/**
 * `e` as it should reach a client: a WRONGTYPE that one of `keys` explains
 * (the first whose type is neither its own nor absent) becomes a
 * StoreKeyConflict naming it (to the log; a client is told what kind of key
 * it is, never its name: key names carry the node's prefix, a queue's
 * pattern and group); anything else, or a probe that fails or finds
 * nothing, is `e` unchanged. Only on a WRONGTYPE, so the TYPE probes cost
 * nothing otherwise, bounded by `deadlineMs`, and at most one probe of the
 * same keys per 5 s: every publish to a queue whose key is wrong fails, and
 * each probed up to 224 keys (26,000 TYPE commands for 200 publishes).
 */
export async function explained(e: unknown, redis: RedisClient, keys: readonly ExpectedKey[], what: string, deadlineMs: number): Promise<unknown> {
  if (!wrongType(e)) return e;
  let byKeys = findings.get(redis);
  if (byKeys === undefined) findings.set(redis, (byKeys = new Map()));
  const id = keys.map(([k]) => k).join('\n');
  const now = Date.now();
  let f = byKeys.get(id);
  if (f === undefined || now - f.at >= PROBE_EVERY_MS) {
    if (byKeys.size >= MAX_FINDINGS) byKeys.clear();
    byKeys.set(id, (f = { at: now, found: probe(redis, keys, deadlineMs) }));
  }
  const found = await f.found;
  return found === undefined ? e : new StoreKeyConflict(found[0], found[1], found[2], what);
}

async function probe(redis: RedisClient, keys: readonly ExpectedKey[], deadlineMs: number): Promise<Found> {
  try {
    const types = await withinDeadline(Promise.all(keys.map(([key]) => redis.type(key))), deadlineMs, 'the key type check');
    const i = types.findIndex((t, j) => t !== 'none' && t !== keys[j]![1]);
    return i < 0 ? undefined : [keys[i]![0], types[i]!, keys[i]![1]];
  } catch {
    return undefined;
  }
}

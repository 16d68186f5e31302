import type { Logger } from '../logger.js';
import { throttled } from '../told-recently.js';

/**
 * Where the store's keys found corrupt are told (SPEC 15.7): the node's
 * `stats.store.corrupt` and its logger. A node passes itself (its stats and
 * logger); without one (a store used alone, in a test) nothing is told.
 */
export interface CorruptWatch {
  readonly stats: { readonly store: { corrupt: number } };
  readonly logger: Logger;
}

/**
 * A key the node owns held something else (another Redis type, malformed
 * fields: written by someone else, Redis is shared) and a store script
 * replaced it, as lost data: counted, and one line a minute per kind of key.
 */
export function corruptKeyReplaced(w: CorruptWatch | undefined, key: string, what: string): void {
  if (!w) return;
  w.stats.store.corrupt++;
  throttled(w.logger).warn({ key }, `${what} in redis was corrupt (wrong type or malformed): replaced, what it held is lost`, `store key corrupt: ${what}`);
}

/** A store write beside an event that failed once the event was stored: told (one line a minute per kind), not a NACK. */
export function sideWriteFailed(w: CorruptWatch | undefined, key: string, what: string, err: string): void {
  if (!w) return;
  throttled(w.logger).warn({ key, err }, `${what} not written (the event is stored)`, `store side write failed: ${what}`);
}

import { check, count } from './errors.js';
import { checkLimits, isOutbox } from './outbox.js';
import type { ConnectOptions } from './options.js';

/**
 * The SDK's numeric options, checked where they are given (connect(),
 * subscribe(), flush(), checkLiveness(), `new MemoryOutbox()`): a negative,
 * NaN or (where it would switch the feature off) infinite value is refused
 * with ClientError MB_ERR_INVALID_ARGUMENT naming the option, instead of
 * being taken silently. Before, NaN limits meant "no bound" (`n > NaN` is
 * false), a negative backoff meant no backoff (a reconnect storm), a NaN
 * `maxPingOut` meant no liveness, and `maxReconnectAttempts: -1`, NATS's
 * "for ever", meant "no attempt". sdk/README "Options".
 */

/** A deadline in ms: > 0, Infinity (none) allowed. */
const deadline = (v: number): boolean => v > 0;
/** A period of something repeated (pings, backoff): finite, > 0 (Infinity would switch it off). */
const period = (v: number): boolean => v > 0 && v < Infinity;

/** A deadline argument (flush, checkLiveness): > 0, Infinity allowed. */
export const checkDeadline = (v: unknown): void => check('timeout', v, deadline);

/** Subscription queue bounds (pendingLimit, pendingBytes): integers >= 1, or Infinity. */
export function checkPending(o: { pendingLimit?: number; pendingBytes?: number }): void {
  check('pendingLimit', o.pendingLimit, count(1));
  check('pendingBytes', o.pendingBytes, count(1));
}

/** Every numeric ConnectOptions field; called by connect() before anything is opened. */
export function checkConnectOptions(o: ConnectOptions): void {
  const b = o.reconnectBackoff ?? {};
  const rules: Array<[string, unknown, (v: number) => boolean]> = [
    ['maxReconnectAttempts', o.maxReconnectAttempts, (v) => v === -1 || count(0)(v)],
    ['connectTimeout', o.connectTimeout, deadline],
    ['requestTimeout', o.requestTimeout, deadline],
    ['pingInterval', o.pingInterval, period],
    ['wakeTimeout', o.wakeTimeout, deadline],
    ['maxPingOut', o.maxPingOut, (v) => v < Infinity && count(1)(v)],
    ['reconnectBackoff.base', b.base, period],
    ['reconnectBackoff.max', b.max, deadline],
  ];
  for (const [name, v, ok] of rules) check(name, v, ok);
  const ob = o.outbox;
  // A custom Outbox bounds itself; false has no limits.
  if (ob && !isOutbox(ob)) checkLimits(ob);
}

/** maxReconnectAttempts as a bound: -1 (NATS's "for ever") and undefined are Infinity. */
export const attemptsBound = (v: number | undefined): number => (v === undefined || v < 0 ? Infinity : v);

import { check, checkKind, count, type Kind } from './errors.js';
import { checkLimits, isOutbox } from './outbox.js';
import type { ConnectOptions } from './options.js';
import type { SubscribeOptions } from './subscription.js';

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

/**
 * A subscription's bounds (pendingLimit, pendingBytes: integers >= 1, or
 * Infinity) and flags; `since` an { epoch, offset } (a wrong one was sent,
 * refused by the node with MB_ERR_BAD_BODY).
 */
export function checkSubscribeOptions(o: SubscribeOptions): void {
  check('pendingLimit', o.pendingLimit, count(1));
  check('pendingBytes', o.pendingBytes, count(1));
  for (const k of ['recover', 'durable', 'latest'] as const) checkKind(k, o[k], 'boolean');
  const s = o.since as unknown as Record<string, unknown> | undefined;
  checkKind('since', s, 'object');
  if (s) {
    checkKind('since.epoch', s.epoch ?? null, 'string');
    check('since.offset', s.offset ?? null, (v) => Number.isSafeInteger(v) && v >= 0);
  }
}

/**
 * The non-numeric arguments, checked where they are given like the numbers
 * above: an options argument that is not an object, a callback, listener,
 * getToken or durable that is not a function, a codec without encode and
 * decode, a signal without addEventListener. Before, each was taken and
 * failed later as a TypeError (untyped): at the call (`publish(t, p, 'x')`
 * read `'x'.at`, a String method), at the first event (`callback: 'x'`), or
 * from a timer as an uncaught exception at the next status (`on('status',
 * 'x')`: the process exited at `close()`). The kinds: errors.ts checkKind.
 */

/** An options argument: an object or undefined (then `{}`). */
export function optionsObject<T extends object>(v: T | undefined): T {
  checkKind('options', v, 'object');
  return v ?? ({} as T);
}

/** Every ConnectOptions field; called by connect() before anything is opened. */
export function checkConnectOptions(o: ConnectOptions): void {
  const signal = o.signal as unknown as Record<string, unknown> | undefined;
  const kinds: Array<[string, unknown, Kind]> = [
    ['reconnectBackoff', o.reconnectBackoff, 'object'],
    ['outbox', o.outbox === false ? undefined : o.outbox, 'object'],
    ['signal', signal, 'object'],
    ['signal.addEventListener', signal && (signal.addEventListener ?? null), 'function'],
    ['getToken', o.getToken, 'function'],
    ['durable', o.durable, 'function'],
    ['codec', o.codec, 'codec'],
    // Sent in HELLO: a wrong kind was refused by the node as MB_ERR_CONNECT_FAILED (cause MB_ERR_BAD_BODY) after a connection.
    ['name', o.name, 'string'],
    ['token', o.token, 'string'],
    ['echo', o.echo, 'boolean'],
    ['reconnect', o.reconnect, 'boolean'],
    ['waitOnFirstConnect', o.waitOnFirstConnect, 'boolean'],
    ['randomize', o.randomize, 'boolean'],
    ['ignoreClusterPeers', o.ignoreClusterPeers, 'boolean'],
  ];
  for (const [name, v, kind] of kinds) checkKind(name, v, kind);
  const b = o.reconnectBackoff ?? {};
  const rules: Array<[string, unknown, (v: number) => boolean]> = [
    ['maxReconnectAttempts', o.maxReconnectAttempts, (v) => v === -1 || count(0)(v)],
    ['connectTimeout', o.connectTimeout, deadline],
    ['requestTimeout', o.requestTimeout, deadline],
    ['drainTimeout', o.drainTimeout, deadline],
    ['maxPendingBytes', o.maxPendingBytes, deadline],
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

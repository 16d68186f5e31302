import { StoreError } from '@meshbus/proto';

/**
 * Bounds one wait on Redis: resolves or rejects as `op` does, or rejects with
 * StoreError MB_ERR_STORE_UNAVAILABLE "redis did not answer <what> within
 * <ms> ms" once `ms` milliseconds have passed, whichever comes first. The
 * caller then treats the store as unavailable, as for a refused connection
 * (a NACK, an ERROR on the sid, a retry on its backoff).
 *
 * Why: a Redis that accepts TCP and never answers (a paused or stopped
 * process, a full network path, CLIENT PAUSE) leaves an ioredis connection
 * "ready" and its commands waiting for ever; nothing fails. The command
 * connection bounds its own commands (ioredis `commandTimeout` =
 * durable.writeTimeoutMs), but the BullMQ producer connection cannot carry
 * one safely (BullMQ duplicates connections for its blocking commands, which a
 * commandTimeout would break), so the durable queue registration, job adds,
 * job counts and WAITs on it are bounded here, with the same deadline.
 *
 * The command itself is not cancelled: Redis may still run it when it wakes
 * (an add or a SADD that then lands twice is harmless: the queue set is a set,
 * and a NACKed publish "may still be kept", SPEC 15). Its late outcome is
 * dropped here.
 *
 * `ms`: milliseconds, 1..2^31-1 (durable.writeTimeoutMs, checked by resolveDurable).
 */
export function withinDeadline<T>(op: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError('MB_ERR_STORE_UNAVAILABLE', `redis did not answer ${what} within ${ms} ms`)), ms);
    // The operation keeps the process alive while it matters; its deadline alone must not.
    timer.unref?.();
  });
  // A rejection that arrives after the deadline has nobody to tell: not an unhandled rejection.
  op.catch(() => {});
  return Promise.race([op, expired]).finally(() => clearTimeout(timer));
}

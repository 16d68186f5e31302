import type { Worker } from 'bullmq';
import { dropConnection, type RedisClient } from './redis-connect.js';

/** The part of BullMQ's Worker that ends its stalled-job checker loop (private in its typings). */
interface StalledCheckerStopper {
  stalledCheckStopper?: () => void;
}

/** BullMQ's wrapper of a worker's own blocking connection (private in its typings; `status` 'ready' once its init is done). */
interface BlockingConnection {
  blockingConnection?: { status?: string; _client?: RedisClient };
}

/** How closeWorker closes. */
export interface CloseOptions {
  /** Asked once the worker is ready (or the wait ended): true closes without waiting for jobs in progress (Redis down). */
  force: () => boolean;
  /** Longest wait for the worker's connections to be ready first, ms. Default 3000. */
  readyWaitMs?: number;
  /** Ends that wait early: Redis was lost (they will not be ready). */
  lost?: Promise<void>;
  onClosing?: () => void;
}

/**
 * Closes a BullMQ worker (`force()`: without waiting for jobs in progress) and
 * ends its stalled-job checker, so nothing of the worker keeps the process
 * alive afterwards. Never rejects.
 *
 * Why the extra step: BullMQ 5's checker (Worker.stalledChecker) is a loop
 * "check, then wait stalledInterval (30 s) on a timer whose stopper it stores
 * in `stalledCheckStopper`". close() calls the stopper of the current wait,
 * but a check that was in flight then finishes (it fails on the closed
 * connection, possibly long after close() settled) and arms a fresh 30 s timer
 * without looking at `closing` again: that timer outlived node.close() and held
 * the process open. So from close() on, every stopper the loop stores is called
 * at once: the wait ends, the loop sees `closing` and returns.
 *
 * And a worker is closed only once its connections are ready (waiting at most
 * `readyWaitMs`, or until `lost`): closing an ioredis connection whose ready check is in flight
 * (a worker made just before the node stops) makes ioredis disconnect it twice,
 * and the second disconnect arms a 2 s timer that waits for a 'close' event
 * that already happened, holding the process open.
 *
 * `onClosing` is called once the worker has stopped fetching jobs (BullMQ sets
 * its `closing` synchronously in close()), before its jobs in progress end.
 *
 * Forced (Redis down: nothing can be moved), the worker's blocking connection
 * is dropped first (unblockClose).
 */
export async function closeWorker(worker: Worker, o: CloseOptions): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    worker.waitUntilReady().catch(() => {}),
    new Promise<void>((r) => (timer = setTimeout(r, o.readyWaitMs ?? 3000))),
    ...(o.lost ? [o.lost] : []),
  ]);
  clearTimeout(timer);
  const force = o.force();
  const w = worker as unknown as StalledCheckerStopper;
  let stopper = w.stalledCheckStopper;
  Object.defineProperty(w, 'stalledCheckStopper', {
    configurable: true,
    get: () => stopper,
    set: (f: (() => void) | undefined) => {
      stopper = f;
      f?.();
    },
  });
  if (force) unblockClose(worker);
  const closed = worker.close(force).catch(() => {});
  o.onClosing?.();
  await closed;
}

/**
 * Drops a worker's blocking connection (dropConnection), once its init is
 * done: with Redis gone, its fetch loop waits in a BZPOPMIN queued for ever
 * (then on a 6 s watchdog timer), and BullMQ's close waits for the
 * connection's 'end', which ioredis never emits for a connection between two
 * reconnect attempts: the close never ended and the worker's lock-renewal
 * timer (7.5 s) rearmed for ever. Dropped, the loop ends and the close goes
 * on. Not while it initializes: that one has no fetch loop waiting, and
 * BullMQ would re-emit the rejected init as an 'error' nobody listens to any
 * more (an uncaught exception).
 */
export function unblockClose(worker: Worker): void {
  const blocking = (worker as unknown as BlockingConnection).blockingConnection;
  if (blocking?.status === 'ready' && blocking._client) dropConnection(blocking._client);
}

/** BullMQ's wrapper of a worker's Redis client (private in its typings). */
interface WorkerConnection {
  connection?: { closing?: boolean };
}

/**
 * Makes a worker that is still closing skip the moves of the jobs it holds
 * (complete, fail), as a forced close does; the jobs stay active until
 * their lock expires and a stalled check gives them back. Called before the
 * worker's Redis connection is dropped. Why: BullMQ 5 retries a move that
 * failed with a connection error at once and for ever while the worker is
 * closing (Worker.retryIfFailed skips its delay then), so a job settled
 * while Redis was down made node.close() spin at 100 % CPU on the dropped
 * connection, for ever (a CI run hung on it). Each retry asks
 * `connection.closing` first (handleCompleted / handleFailed), so the loop
 * ends at its next turn.
 */
export function abandonMoves(worker: Worker): void {
  const c = (worker as unknown as WorkerConnection).connection;
  if (c !== undefined && typeof c === 'object') c.closing = true;
}

import type { Worker } from 'bullmq';

/** The part of BullMQ's Worker that ends its stalled-job checker loop (private in its typings). */
interface StalledCheckerStopper {
  stalledCheckStopper?: () => void;
}

/**
 * Closes a BullMQ worker (`force`: without waiting for jobs in progress) and
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
 * `readyWaitMs`): closing an ioredis connection whose ready check is in flight
 * (a worker made just before the node stops) makes ioredis disconnect it twice,
 * and the second disconnect arms a 2 s timer that waits for a 'close' event
 * that already happened, holding the process open.
 *
 * `onClosing` is called once the worker has stopped fetching jobs (BullMQ sets
 * its `closing` synchronously in close()), before its jobs in progress end.
 */
export async function closeWorker(worker: Worker, force: boolean, readyWaitMs = 3000, onClosing?: () => void): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    worker.waitUntilReady().catch(() => {}),
    new Promise<void>((r) => (timer = setTimeout(r, readyWaitMs))),
  ]);
  clearTimeout(timer);
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
  const closed = worker.close(force).catch(() => {});
  onClosing?.();
  await closed;
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

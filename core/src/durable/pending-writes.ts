import type { RedisClient } from './redis-connect.js';

/**
 * Store writes a node started on its own for jobs it settled (a given-up
 * job's dead letter, a delayed publish's quota release), so that its stop
 * waits for them before the queues and Redis connections close. Before, a
 * job failed as the node stopped (its last attempt) had its dead letter
 * started in the background while stop() went on to close the connections:
 * the write failed with "Connection is closed", the job stayed among the
 * failed jobs without a dead letter nor a `_DLQ.<group>` publication.
 */
export class PendingWrites {
  private readonly pending = new Set<Promise<void>>();

  /** Tracks `write` until it settles (either way). Returns `write`. */
  track<T>(write: Promise<T>): Promise<T> {
    const done = write.then(
      () => undefined,
      () => undefined,
    );
    this.pending.add(done);
    void done.then(() => this.pending.delete(done));
    return write;
  }

  /**
   * Resolves once every write tracked now, and any tracked meanwhile, has
   * settled; after `ms` at most, or as soon as `conn` closes (nothing more
   * can be written). Each write is bounded by the store deadline already.
   */
  async settled(ms: number, conn: RedisClient): Promise<void> {
    if (this.pending.size === 0 || ms <= 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stop = (): void => {};
    const over = new Promise<void>((r) => {
      stop = r;
      timer = setTimeout(r, ms);
      conn.once('close', r);
    });
    let ended = false;
    void over.then(() => (ended = true));
    // A dead letter's write may start another tracked write (its quota release): wait until none is left.
    while (this.pending.size > 0 && !ended) await Promise.race([Promise.allSettled([...this.pending]), over]);
    clearTimeout(timer);
    conn.off('close', stop);
  }
}

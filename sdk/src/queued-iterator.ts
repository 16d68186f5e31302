/**
 * An unbounded-by-default FIFO exposed as an async iterator: the producer
 * pushes, the consumer `for await`s. Used for subscriptions and status events.
 * With `cap`, at most that many items wait: a push past it drops the
 * oldest waiting item (counted in `overflowed`), so a producer the consumer
 * cannot keep up with (a node's ERROR storm becoming status events) never
 * grows memory without bound.
 */
export class QueuedIterator<T> implements AsyncIterableIterator<T> {
  /** Items dropped because `limit` were waiting. */
  overflowed = 0;
  /** Sum of `weigh(item)` over the items waiting (0 without `weigh`). */
  weight = 0;
  private items: T[] = [];
  private head = 0;
  /**
   * Calls of next() waiting for an item, oldest first. Each is settled: a
   * single slot dropped all but the last of concurrent calls (a `Promise.race`
   * with a timer in a loop), whose promises then never settled.
   */
  private waiters: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }> = [];
  private ended = false;
  private error: unknown;
  /** Called once when the consumer stops early (break/return) or the iterator ends. */
  onStop: (() => void) | undefined;
  /** Called after the consumer took a waiting item. */
  onTake: (() => void) | undefined;

  constructor(
    private readonly cap = Infinity,
    /** What an item weighs (e.g. its bytes), summed in `weight` while it waits. */
    private readonly weigh?: (item: T) => number,
  ) {}

  /** Items pushed and not yet taken by the consumer. */
  get pending(): number {
    return this.items.length - this.head;
  }

  get done(): boolean {
    return this.ended;
  }

  push(item: T): void {
    if (this.ended) return;
    const w = this.waiters.shift();
    if (w) {
      w.resolve({ value: item, done: false });
      return;
    }
    if (this.items.length - this.head >= this.cap) {
      this.taken(this.items[this.head]!);
      this.items[this.head++] = undefined as T;
      this.overflowed++;
      this.compact();
    }
    if (this.weigh) this.weight += this.weigh(item);
    this.items.push(item);
  }

  /** `item` leaves the queue. */
  private taken(item: T): void {
    if (this.weigh) this.weight -= this.weigh(item);
  }

  /**
   * Ends the iterator: the consumer still receives the items already queued,
   * then `done` (or `error` thrown from `next()`).
   */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    // The first waiting call gets the error (as a later next() would), the others done.
    for (const w of this.waiters.splice(0)) {
      if (this.error !== undefined) {
        w.reject(this.error);
        this.error = undefined;
      } else w.resolve({ value: undefined, done: true });
    }
    this.stopped();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.head < this.items.length) {
      const value = this.items[this.head]!;
      this.items[this.head++] = undefined as T;
      this.taken(value);
      this.compact();
      this.onTake?.();
      return Promise.resolve({ value, done: false });
    }
    if (this.ended) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.items = [];
    this.head = 0;
    this.weight = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Drops the taken slots once they are most of the array. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }

  private stopped(): void {
    const f = this.onStop;
    this.onStop = undefined;
    f?.();
  }
}

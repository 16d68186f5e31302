/**
 * The frames written to one wire during one tick (everything one input chunk
 * routes there), handed out together on the next tick: one system call or
 * one WebSocket message per tick instead of one per frame. `onTick` runs
 * once per tick that had writes, or at once when `maxBytes` are waiting; it
 * takes the chunks with `take()` when it can send them.
 */
export class TickBatch {
  private chunks: Uint8Array[] = [];
  /** Bytes waiting. */
  bytes = 0;
  private scheduled = false;

  constructor(
    private readonly onTick: () => void,
    private readonly maxBytes = Infinity,
  ) {}

  get count(): number {
    return this.chunks.length;
  }

  add(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= this.maxBytes) TickBatch.fire(this);
    else if (!this.scheduled) {
      this.scheduled = true;
      // One static function with the batch as argument: no closure per batch (per connection).
      process.nextTick(TickBatch.fire, this);
    }
  }

  /** The waiting chunks, in order; the batch is empty afterwards. */
  take(): Uint8Array[] {
    const c = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    return c;
  }

  private static fire(b: TickBatch): void {
    b.scheduled = false;
    b.onTick();
  }
}

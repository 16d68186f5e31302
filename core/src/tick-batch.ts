/**
 * The frames written to one wire during one tick (everything one input chunk
 * routes there), handed out together on the next tick: one system call or
 * one WebSocket message per tick instead of one per frame. `onTick` runs
 * once per tick that had writes, or at once when `maxBytes` are waiting; it
 * takes the chunks with `take()` when it can send them.
 *
 * Views that follow each other in memory are joined: a chunk that starts
 * where the previous one ended in the same ArrayBuffer extends it instead of
 * becoming an entry of its own. A node forwards events as views of the input
 * chunk they arrived in, so the frames one input chunk routes to a receiver
 * come out as one view of that chunk (or a few, around the frames it did not
 * route there): the socket gets them without the copy a concatenation costs
 * and without a writev of one iovec per frame (bench/README.md, "Profile").
 * The bytes handed out are the same bytes in the same order either way.
 */
export class TickBatch {
  private chunks: Uint8Array[] = [];
  /** First chunk of the run of contiguous views being gathered (not yet in `chunks`). */
  private run: Uint8Array | undefined;
  /** Byte offset, in `run.buffer`, one past the run's last byte. */
  private runEnd = 0;
  /** Bytes waiting. */
  bytes = 0;
  private scheduled = false;

  constructor(
    private readonly onTick: () => void,
    private readonly maxBytes = Infinity,
  ) {}

  /** Entries `take()` would hand out now (contiguous views count once). */
  get count(): number {
    return this.run === undefined ? this.chunks.length : this.chunks.length + 1;
  }

  add(chunk: Uint8Array): void {
    const run = this.run;
    if (run !== undefined && chunk.byteOffset === this.runEnd && chunk.buffer === run.buffer) {
      this.runEnd += chunk.length;
    } else {
      if (run !== undefined) this.chunks.push(joined(run, this.runEnd));
      this.run = chunk;
      this.runEnd = chunk.byteOffset + chunk.length;
    }
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
    if (this.run !== undefined) c.push(joined(this.run, this.runEnd));
    this.chunks = [];
    this.run = undefined;
    this.runEnd = 0;
    this.bytes = 0;
    return c;
  }

  private static fire(b: TickBatch): void {
    b.scheduled = false;
    b.onTick();
  }
}

/** `first` when the run is that one chunk, else one view from its start to `end` (no copy). */
function joined(first: Uint8Array, end: number): Uint8Array {
  const start = first.byteOffset;
  return end === start + first.length ? first : Buffer.from(first.buffer, start, end - start);
}

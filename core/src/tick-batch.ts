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
  /** The run of contiguous bytes being gathered (not yet in `chunks`): its ArrayBuffer and byte offsets there. */
  private runAb: ArrayBufferLike | undefined;
  private runStart = 0;
  private runEnd = 0;
  /** The chunk itself while the run is exactly one add()ed chunk (handed out as is). */
  private runFirst: Uint8Array | undefined;
  /** The array of the last addRange() and the index in it where the run ends: a cheap test for the next range. */
  private runSrc: Uint8Array | undefined;
  private runSrcEnd = 0;
  /** Bytes waiting. */
  bytes = 0;
  private scheduled = false;

  constructor(
    private readonly onTick: () => void,
    private readonly maxBytes = Infinity,
  ) {}

  /** Entries `take()` would hand out now (contiguous views count once). */
  get count(): number {
    return this.runAb === undefined ? this.chunks.length : this.chunks.length + 1;
  }

  add(chunk: Uint8Array): void {
    const ab = chunk.buffer;
    const off = chunk.byteOffset;
    const len = chunk.length;
    if (ab === this.runAb && off === this.runEnd) {
      this.runEnd += len;
      this.runFirst = undefined;
    } else {
      this.startRun(ab, off, len);
      this.runFirst = chunk;
    }
    this.runSrc = undefined;
    this.added(len);
  }

  /** Adds `buf[start, end)`, like `add(buf.subarray(start, end))` without making the view. */
  addRange(buf: Uint8Array, start: number, end: number): void {
    const len = end - start;
    if (buf === this.runSrc && start === this.runSrcEnd) {
      this.runEnd += len;
    } else {
      const ab = buf.buffer;
      const off = buf.byteOffset + start;
      if (ab === this.runAb && off === this.runEnd) this.runEnd += len;
      else this.startRun(ab, off, len);
      this.runSrc = buf;
    }
    this.runFirst = undefined;
    this.runSrcEnd = end;
    this.added(len);
  }

  /** The waiting chunks, in order; the batch is empty afterwards. */
  take(): Uint8Array[] {
    this.close();
    const c = this.chunks;
    this.chunks = [];
    this.bytes = 0;
    return c;
  }

  private added(len: number): void {
    this.bytes += len;
    if (this.bytes >= this.maxBytes) TickBatch.fire(this);
    else if (!this.scheduled) {
      this.scheduled = true;
      // One static function with the batch as argument: no closure per batch (per connection).
      process.nextTick(TickBatch.fire, this);
    }
  }

  /** Closes the run being gathered and starts one of `len` bytes at `off` in `ab`. */
  private startRun(ab: ArrayBufferLike, off: number, len: number): void {
    this.close();
    this.runAb = ab;
    this.runStart = off;
    this.runEnd = off + len;
  }

  /** Moves the run into `chunks`: the chunk itself when it was one add()ed chunk, else one view (no copy). */
  private close(): void {
    const ab = this.runAb;
    if (ab === undefined) return;
    this.chunks.push(this.runFirst ?? Buffer.from(ab as ArrayBuffer, this.runStart, this.runEnd - this.runStart));
    this.runAb = undefined;
    this.runFirst = undefined;
    this.runSrc = undefined;
  }

  private static fire(b: TickBatch): void {
    b.scheduled = false;
    b.onTick();
  }
}

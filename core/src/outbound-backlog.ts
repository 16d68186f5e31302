import type { DropTag } from './subscriber.js';

const EMPTY = new Uint8Array(0);

/**
 * An outbound queue's backlog: the frames waiting for the wire, oldest
 * first, as copies (an entry pins no input chunk). An entry is a head (the
 * frame, or this receiver's own header), an optional tail (the rest of the
 * frame, a copy shared with other queues) and a tag (outbound-queue.ts: its
 * DropTag when droppable, undefined for a firm event, the queue's CONTROL for
 * a control frame). Entries are taken from the front and dropped in place
 * (emptied, then skipped). A queue makes one when a frame must wait and lets
 * it go once it is empty: an idle connection holds none (issue #15, RSS per
 * idle connection).
 *
 * What the arrays hold stays proportional to what waits: `compact()` gives
 * back the room of entries taken, and of entries dropped in place once they
 * are most of what is left. Before, only a drain compacted, so a reader that
 * never read behind a 'drop' subscription (or a peer link) grew the arrays
 * by one slot per event dropped while the bytes counted stayed within the
 * bounds: one such client took a node's heap from 133 to 720 MB in 30 s,
 * and one under --max-old-space-size=256 out of memory in 17 s.
 */
export class Backlog {
  readonly heads: Uint8Array[] = [];
  readonly tails: Array<Uint8Array | undefined> = [];
  readonly tags: Array<DropTag | undefined> = [];
  /** Index of the oldest entry not taken yet. */
  head = 0;
  /** Every entry before this index is firm or already dropped: where the next drop scan starts. */
  dropFrom = 0;
  /** Entries not emptied (all at `head` or after it). */
  private live = 0;

  get empty(): boolean {
    return this.head === this.heads.length;
  }

  push(head: Uint8Array, tail: Uint8Array | undefined, tag: DropTag | undefined): void {
    this.heads.push(head);
    this.tails.push(tail);
    this.tags.push(tag);
    this.live++;
  }

  /** Empties entry `i` in place (dropped, or handed to the wire) and returns its bytes. */
  clearAt(i: number): number {
    const size = this.heads[i]!.length + (this.tails[i]?.length ?? 0);
    this.heads[i] = EMPTY;
    this.tails[i] = undefined;
    this.tags[i] = undefined;
    this.live--;
    return size;
  }

  /** Moves `head` past entries emptied by drops. */
  skipEmptied(): void {
    while (this.head < this.heads.length && this.heads[this.head]!.length === 0) this.head++;
  }

  /**
   * Gives back the room of the entries taken once they are most of the
   * arrays, and of the entries dropped in place once they are most of what
   * is left (amortised O(1) per entry either way).
   */
  compact(): void {
    const n = this.head;
    const holes = this.heads.length - n - this.live;
    if (holes > 1024 && holes * 2 > this.heads.length - n) return this.squeeze();
    if (n <= 1024 || n * 2 <= this.heads.length) return;
    this.heads.splice(0, n);
    this.tails.splice(0, n);
    this.tags.splice(0, n);
    this.dropFrom = Math.max(0, this.dropFrom - n);
    this.head = 0;
  }

  /** Keeps only the entries not emptied, in order; `dropFrom` follows the firm entries it had passed. */
  private squeeze(): void {
    const { heads, tails, tags } = this;
    let w = 0;
    let dropFrom = 0;
    for (let r = this.head; r < heads.length; r++) {
      if (heads[r]!.length === 0) continue;
      heads[w] = heads[r]!;
      tails[w] = tails[r];
      tags[w] = tags[r];
      w++;
      if (r < this.dropFrom) dropFrom = w;
    }
    heads.length = w;
    tails.length = w;
    tags.length = w;
    this.head = 0;
    this.dropFrom = dropFrom;
  }
}

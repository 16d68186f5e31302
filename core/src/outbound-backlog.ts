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
 */
export class Backlog {
  readonly heads: Uint8Array[] = [];
  readonly tails: Array<Uint8Array | undefined> = [];
  readonly tags: Array<DropTag | undefined> = [];
  /** Index of the oldest entry not taken yet. */
  head = 0;
  /** Every entry before this index is firm or already dropped: where the next drop scan starts. */
  dropFrom = 0;

  get empty(): boolean {
    return this.head === this.heads.length;
  }

  push(head: Uint8Array, tail: Uint8Array | undefined, tag: DropTag | undefined): void {
    this.heads.push(head);
    this.tails.push(tail);
    this.tags.push(tag);
  }

  /** Empties entry `i` in place (dropped, or handed to the wire) and returns its bytes. */
  clearAt(i: number): number {
    const size = this.heads[i]!.length + (this.tails[i]?.length ?? 0);
    this.heads[i] = EMPTY;
    this.tails[i] = undefined;
    this.tags[i] = undefined;
    return size;
  }

  /** Moves `head` past entries emptied by drops. */
  skipEmptied(): void {
    while (this.head < this.heads.length && this.heads[this.head]!.length === 0) this.head++;
  }

  /** Gives back the room of the entries taken once they are most of the arrays (amortised O(1) per entry). */
  compact(): void {
    const n = this.head;
    if (n <= 1024 || n * 2 <= this.heads.length) return;
    this.heads.splice(0, n);
    this.tails.splice(0, n);
    this.tags.splice(0, n);
    this.dropFrom = Math.max(0, this.dropFrom - n);
    this.head = 0;
  }
}

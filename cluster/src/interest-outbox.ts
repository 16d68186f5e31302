/**
 * The INTEREST frames one link is owed, gathered and cut to size.
 *
 * Changes of interest arrive one key at a time (a client's SUB, one entry of
 * a peer's snapshot); sent one frame each, a leaf or peer announcing 50,000
 * subscriptions made 50,000 frames per link. The outbox gathers them until
 * the exchange flushes (end of the current turn: one frame per link per burst)
 * and cuts the bodies at MAX_INTEREST_BODY, because a body built from an
 * unbounded collection must still fit the receiving node's frame limit: a
 * snapshot of 100,000 entries (~5 MB) was dropped whole by the receiver as a
 * bad frame, and the link stayed up knowing none of them.
 *
 * Order is kept: a receiver applies a body's `del` before its `add`
 * (cluster/README.md, INTEREST), so a removal queued after an addition starts a
 * new body.
 */

/** An INTEREST add entry: [id, pattern, queue or null, distance in links to the subscriber]. */
export type InterestEntry = [number, string, string | null, number];

export interface InterestBody {
  snap?: true;
  add?: InterestEntry[];
  del?: number[];
}

/**
 * Largest INTEREST body written, bytes (an upper estimate of its msgpack
 * size). Every node accepts frames of at least HEADER_SIZE + MAX_EXT
 * (65,595 B) whatever its maxPayload, and a peer link's frames before
 * authentication are bounded at 16 KiB (not INTEREST), so 32 KiB fits any
 * receiver with room to spare.
 */
export const MAX_INTEREST_BODY = 32 * 1024;

/** Bytes an entry may take in msgpack at most: array header, uint32 id, two strings (≤ 3 B per UTF-16 unit, plus their headers), distance. */
function entryBytes(e: InterestEntry): number {
  return 16 + 3 * e[1].length + (e[2] === null ? 0 : 3 * e[2].length);
}

/** Bytes a removal may take at most: a uint32. */
const DEL_BYTES = 5;
/** The body's map and array headers, and `snap`. */
const BODY_BYTES = 24;

export class InterestOutbox {
  private readonly ready: InterestBody[] = [];
  private current: InterestBody | undefined;
  private bytes = 0;

  /** Starts with a snapshot: the receiver drops what this link announced before and takes what follows. */
  snapshot(): void {
    this.cut();
    this.current = { snap: true, add: [] };
    this.bytes = BODY_BYTES;
  }

  add(e: InterestEntry): void {
    const n = entryBytes(e);
    const b = this.room(n);
    (b.add ??= []).push(e);
    this.bytes += n;
  }

  del(id: number): void {
    // A removal after an addition in the same body would be applied before it.
    if (this.current?.add?.length) this.cut();
    const b = this.room(DEL_BYTES);
    (b.del ??= []).push(id);
    this.bytes += DEL_BYTES;
  }

  /** The bodies owed, oldest first; the outbox is empty after. */
  take(): InterestBody[] {
    this.cut();
    return this.ready.splice(0);
  }

  get empty(): boolean {
    return this.current === undefined && this.ready.length === 0;
  }

  /** The body to add `n` bytes to: the current one, or a new one when it would pass MAX_INTEREST_BODY. */
  private room(n: number): InterestBody {
    if (this.current && this.bytes + n > MAX_INTEREST_BODY && this.bytes > BODY_BYTES) this.cut();
    if (!this.current) {
      this.current = {};
      this.bytes = BODY_BYTES;
    }
    return this.current;
  }

  private cut(): void {
    if (this.current) this.ready.push(this.current);
    this.current = undefined;
  }
}

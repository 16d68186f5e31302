/**
 * Duplicate suppression for partial meshes: per origin node, the highest
 * sequence seen and a bitmap of the WINDOW sequences below it (the gossipsub
 * lesson: a sliding window per origin is far cheaper than a set of ids).
 * A sequence older than the window counts as seen: paths are bounded by the
 * hop limit, so a copy that late is a duplicate.
 */
const WINDOW = 4096;
const WORDS = WINDOW / 32;
/**
 * Origins remembered (512 bytes each): the least recently advanced is
 * forgotten past it, so a peer that sprays events under made-up origins
 * cannot grow a node's memory; a forgotten origin only loses duplicate
 * suppression for copies still in flight (bounded by the hop limit).
 */
export const MAX_DEDUP_ORIGINS = 4096;
/**
 * How far ahead of this node's clock a sequence may move an origin's window,
 * µs (an hour: sequences start at the clock in µs). Further ahead it is let
 * through unrecorded: one event forged far in the future would otherwise put
 * every later event of that origin "before the window", dropped as a copy.
 */
const MAX_AHEAD_US = 3600 * 1e6;

class OriginWindow {
  max = 0;
  readonly bits = new Uint32Array(WORDS);
}

export class DedupWindow {
  private readonly origins = new Map<string, OriginWindow>();

  /** Records (origin, seq); returns false when it was seen before. */
  firstTime(origin: string, seq: number): boolean {
    let w = this.origins.get(origin);
    if (!w) {
      if (seq > Date.now() * 1000 + MAX_AHEAD_US) return true;
      if (this.origins.size >= MAX_DEDUP_ORIGINS) this.origins.delete(this.origins.keys().next().value!);
      w = new OriginWindow();
      this.origins.set(origin, w);
    }
    if (seq > w.max) {
      if (seq > Date.now() * 1000 + MAX_AHEAD_US) return true;
      // Most recently advanced last: the bound above forgets the first.
      this.origins.delete(origin);
      this.origins.set(origin, w);
      const shift = seq - w.max;
      if (shift >= WINDOW) w.bits.fill(0);
      else for (let s = w.max + 1; s <= seq; s++) this.clear(w, s);
      w.max = seq;
      this.set(w, seq);
      return true;
    }
    if (w.max - seq >= WINDOW) return false;
    if (this.get(w, seq)) return false;
    this.set(w, seq);
    return true;
  }

  /** Origins remembered now (≤ MAX_DEDUP_ORIGINS). */
  get size(): number {
    return this.origins.size;
  }

  /** Forgets an origin (its node restarted with a new id or left). */
  forget(origin: string): void {
    this.origins.delete(origin);
  }

  private index(seq: number): [number, number] {
    const i = seq % WINDOW;
    return [i >>> 5, 1 << (i & 31)];
  }
  private get(w: OriginWindow, seq: number): boolean {
    const [word, bit] = this.index(seq);
    return (w.bits[word]! & bit) !== 0;
  }
  private set(w: OriginWindow, seq: number): void {
    const [word, bit] = this.index(seq);
    w.bits[word]! |= bit;
  }
  private clear(w: OriginWindow, seq: number): void {
    const [word, bit] = this.index(seq);
    w.bits[word]! &= ~bit;
  }
}

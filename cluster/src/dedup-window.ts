/**
 * Duplicate suppression for partial meshes: per origin node, the highest
 * sequence seen and a bitmap of the WINDOW sequences below it (the gossipsub
 * lesson: a sliding window per origin is far cheaper than a set of ids).
 * A sequence older than the window counts as seen: paths are bounded by the
 * hop limit, so a copy that late is a duplicate.
 */
const WINDOW = 4096;
const WORDS = WINDOW / 32;

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
      w = new OriginWindow();
      this.origins.set(origin, w);
    }
    if (seq > w.max) {
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

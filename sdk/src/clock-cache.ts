/**
 * A bounded map with second-chance ("clock") replacement: a hit marks its
 * slot; when full, a hand sweeps the slots, clearing marks, and replaces the
 * first unmarked one. One entry leaves per insert, never the whole map, so a
 * working set that fits stays cached however many other keys pass by.
 *
 * Memory: a Map entry and two array slots per key, about 45 B (Node 20,
 * 64-bit) plus the key and the value; the bound is `capacity` entries.
 */
export class ClockCache<K, V> {
  private readonly slotOf = new Map<K, number>();
  private readonly keyAt: K[] = [];
  private readonly valueAt: V[] = [];
  private readonly mark: Uint8Array;
  private hand = 0;
  private misses = 0;

  constructor(private readonly cap: number) {
    this.mark = new Uint8Array(cap);
  }

  /** The value of `key` (marks it as used), or undefined. */
  get(key: K): V | undefined {
    const i = this.slotOf.get(key);
    if (i === undefined) return undefined;
    this.mark[i] = 1;
    return this.valueAt[i];
  }

  /**
   * Sets `key` to `value`; false when it was not kept. When full and `key` is new, only one new key in
   * 8 gets in, replacing the first unmarked entry from the hand on: keys
   * cycling through more than the cache holds would otherwise replace an
   * entry on every miss and be evicted before their next use (no hit, a
   * map delete and insert each time); admitted this way, a part of them
   * stays and hits, and a miss costs the caller its own work only.
   */
  set(key: K, value: V): boolean {
    const mark = this.mark;
    let i = this.slotOf.get(key) ?? this.keyAt.length;
    if (i === this.cap) {
      if ((++this.misses & 7) !== 0) return false;
      while (mark[(i = this.hand)]) {
        mark[i] = 0;
        this.hand = (i + 1) % this.cap;
      }
      this.hand = (i + 1) % this.cap;
      this.slotOf.delete(this.keyAt[i]!);
    }
    this.slotOf.set(key, i);
    this.keyAt[i] = key;
    this.valueAt[i] = value;
    mark[i] = 0;
    return true;
  }
}

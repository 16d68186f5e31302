/**
 * Who wants what: for each (pattern, queue) key, how many subscriptions each
 * source holds, where a source is 'local' (this node's clients) or a link
 * (a peer's or a leaf's). A link is told about a key when some source other
 * than itself wants it (split horizon), counting only what this node would
 * route for it: for a peer of a full mesh, where events travel one hop, the
 * node's clients and its leaves; for a leaf, and for any link of a partial
 * mesh, every other source.
 */
export type Source = 'local' | object;

export interface InterestKey {
  pattern: string;
  queue: string | undefined;
}

export function keyOf(pattern: string, queue: string | undefined): string {
  return queue === undefined ? pattern : `${pattern}\u0000${queue}`;
}

export function parseKey(key: string): InterestKey {
  const i = key.indexOf('\u0000');
  return i < 0 ? { pattern: key, queue: undefined } : { pattern: key.slice(0, i), queue: key.slice(i + 1) };
}

export class InterestLedger {
  private readonly counts = new Map<string, Map<Source, number>>();

  /** `isLeaf`: whether a source link is a leaf node's link (on its hub). */
  constructor(
    private readonly transitive: boolean,
    private readonly isLeaf: (source: Source) => boolean = () => false,
  ) {}

  /** Adjusts the count of `source` for `key`. */
  change(key: string, source: Source, delta: number): void {
    let m = this.counts.get(key);
    if (!m) this.counts.set(key, (m = new Map()));
    const n = (m.get(source) ?? 0) + delta;
    if (n > 0) m.set(source, n);
    else m.delete(source);
    if (m.size === 0) this.counts.delete(key);
  }

  /** Drops everything `source` contributed; returns the keys it touched. */
  dropSource(source: Source): string[] {
    const touched: string[] = [];
    for (const [key, m] of this.counts) {
      if (m.delete(source)) {
        touched.push(key);
        if (m.size === 0) this.counts.delete(key);
      }
    }
    return touched;
  }

  /** True when `link` should hear about `key`. */
  wants(key: string, link: Source): boolean {
    const m = this.counts.get(key);
    if (!m) return false;
    const everything = this.transitive || this.isLeaf(link);
    for (const [src, n] of m) {
      if (src === link || n <= 0) continue;
      if (everything || src === 'local' || this.isLeaf(src)) return true;
    }
    return false;
  }

  keys(): IterableIterator<string> {
    return this.counts.keys();
  }
}

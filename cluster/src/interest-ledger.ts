/**
 * Who wants what: for each (pattern, queue) key, how many subscriptions each
 * source holds, where a source is 'local' (this node's clients) or a link. A
 * link is told about a key when some source other than itself wants it
 * (split horizon), counting only what this node would route for it:
 *
 * | told to | counts |
 * |---|---|
 * | a peer of a full mesh (one hop) | local, leaves |
 * | a leaf; any link of a partial mesh | every other source |
 * | a gateway link another region dialed (it sends us that region's events) | local, leaves, peers: the whole region, no other region |
 * | a gateway link this node dialed (we send over it, never receive) | nothing |
 */
export type Source = 'local' | object;

/** How the ledger sees a link. */
export type LinkClass = 'peer' | 'leaf' | 'gateway-in' | 'gateway-out';

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

  /** `classOf`: what a source link is (default: a peer). */
  constructor(
    private readonly transitive: boolean,
    private readonly classOf: (link: object) => LinkClass = () => 'peer',
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
    const to = link === 'local' ? 'peer' : this.classOf(link);
    if (to === 'gateway-out') return false;
    const everything = this.transitive || to === 'leaf';
    for (const [src, n] of m) {
      if (src === link || n <= 0) continue;
      if (everything || src === 'local') return true;
      const from = this.classOf(src);
      if (from === 'leaf' || (to === 'gateway-in' && from === 'peer')) return true;
    }
    return false;
  }

  keys(): IterableIterator<string> {
    return this.counts.keys();
  }
}

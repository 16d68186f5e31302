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

/**
 * Farthest interest is announced, in links from the subscriber: the default
 * maxHops of an event (SPEC 3.3), so no event could travel farther anyway. It
 * also ends the count to infinity of interest that circles in a partial mesh
 * with cycles (RIP's rule, with triggered updates): when the subscriber goes,
 * what the ring nodes still announce to each other grows by one link per
 * round until it passes this bound and is withdrawn.
 */
export const MAX_INTEREST_DISTANCE = 8;

interface Held {
  /** Subscriptions (local) or entries (a link) for the key. */
  n: number;
  /** Links from this node to the nearest subscriber through that source: 0 for local. */
  dist: number;
}

export class InterestLedger {
  private readonly counts = new Map<string, Map<Source, Held>>();

  /** `classOf`: what a source link is (default: a peer). */
  constructor(
    private readonly transitive: boolean,
    private readonly classOf: (link: object) => LinkClass = () => 'peer',
  ) {}

  /** Adjusts the count of `source` for `key`; `dist` (a link's entries): how far its subscriber is. */
  change(key: string, source: Source, delta: number, dist = source === 'local' ? 0 : 1): void {
    let m = this.counts.get(key);
    if (!m) this.counts.set(key, (m = new Map()));
    const h = m.get(source);
    const n = (h?.n ?? 0) + delta;
    if (n > 0) m.set(source, { n, dist });
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

  /**
   * The distance to announce `key` to `link` with (the nearest counted source's
   * plus one), or undefined when the link should not hear of it: no source
   * other than itself counts for it (the table in this file's header), or the
   * nearest is past MAX_INTEREST_DISTANCE.
   */
  distanceFor(key: string, link: object): number | undefined {
    const m = this.counts.get(key);
    if (!m) return undefined;
    let best = Infinity;
    for (const [src, h] of m) {
      if (src === link || h.n <= 0 || h.dist >= best) continue;
      if (this.countsFor(src, link)) best = h.dist;
    }
    return best + 1 <= MAX_INTEREST_DISTANCE ? best + 1 : undefined;
  }

  /** Whether what `source` wants counts toward what `link` is told (the table in this file's header). */
  countsFor(source: Source, link: object): boolean {
    const to = this.classOf(link);
    if (to === 'gateway-out') return false;
    if (this.transitive || to === 'leaf' || source === 'local') return true;
    const from = this.classOf(source);
    return from === 'leaf' || (to === 'gateway-in' && from === 'peer');
  }

  keys(): IterableIterator<string> {
    return this.counts.keys();
  }
}

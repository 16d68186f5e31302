/**
 * TopicTrie's API (topic-trie.ts) over a map of patterns, matched one by one
 * with topicMatches: the same results in a fraction of the code. For the
 * SDK's browser and mobile bundles (their build swaps the module; a client
 * holds few patterns, and its dispatcher caches each topic's match until the
 * set of patterns changes); nodes keep the trie. test/topic.test.ts runs the
 * trie's tests over both.
 */
import { topicMatches } from './topic.js';

export class TopicTrie<T> {
  private readonly byPattern = new Map<string, Set<T>>();
  private count = 0;
  private gen = 0;

  /** Number of (pattern, value) entries. */
  get size(): number {
    return this.count;
  }

  /** Changes whenever an entry is added or removed (for match caches). */
  get version(): number {
    return this.gen;
  }

  /** Adds `value` under `pattern`; false when it was there already. */
  add(pattern: string, value: T): boolean {
    let set = this.byPattern.get(pattern);
    if (!set) this.byPattern.set(pattern, (set = new Set()));
    if (set.has(value)) return false;
    set.add(value);
    this.count++;
    this.gen++;
    return true;
  }

  /** Removes `value` from `pattern`; false when it was not there. */
  remove(pattern: string, value: T): boolean {
    const set = this.byPattern.get(pattern);
    if (!set?.delete(value)) return false;
    if (set.size === 0) this.byPattern.delete(pattern);
    this.count--;
    this.gen++;
    return true;
  }

  /** Calls `visit` for every value whose pattern matches `topic` (once per matching pattern). */
  match(topic: string, visit: (value: T) => void): void {
    for (const [p, set] of this.byPattern) if (topicMatches(p, topic)) for (const v of set) visit(v);
  }

  /** Calls `visit` for every (pattern, value). */
  forEach(visit: (pattern: string, value: T) => void): void {
    for (const [p, set] of this.byPattern) for (const v of set) visit(p, v);
  }
}

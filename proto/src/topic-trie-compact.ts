/**
 * TopicTrie's API (topic-trie.ts) over a map of patterns, matched one by one
 * (topicMatches' rule on pre-split tokens): the same results in a fraction of
 * the code, at a cost per pattern (tens of ns) where the trie's is per topic
 * token. For the SDK's browser and mobile bundles (their build swaps the
 * module; a client holds few patterns, and its dispatcher caches each topic's
 * match until the set of patterns changes); nodes keep the trie.
 * test/topic.test.ts runs the trie's tests over both.
 */
import { tokensMatch } from './topic.js';

/** The values of one pattern, with the pattern's tokens. */
interface Entry<T> {
  readonly tokens: string[];
  readonly values: Set<T>;
}

export class TopicTrie<T> {
  private readonly byPattern = new Map<string, Entry<T>>();
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
    let e = this.byPattern.get(pattern);
    if (!e) this.byPattern.set(pattern, (e = { tokens: pattern.split('.'), values: new Set() }));
    if (e.values.has(value)) return false;
    e.values.add(value);
    this.count++;
    this.gen++;
    return true;
  }

  /** Removes `value` from `pattern`; false when it was not there. */
  remove(pattern: string, value: T): boolean {
    const e = this.byPattern.get(pattern);
    if (!e?.values.delete(value)) return false;
    if (e.values.size === 0) this.byPattern.delete(pattern);
    this.count--;
    this.gen++;
    return true;
  }

  /** Calls `visit` for every value whose pattern matches `topic` (once per matching pattern). */
  match(topic: string, visit: (value: T) => void): void {
    const t = topic.split('.');
    for (const e of this.byPattern.values()) if (tokensMatch(e.tokens, t)) for (const v of e.values) visit(v);
  }

  /** Calls `visit` for every (pattern, value). */
  forEach(visit: (pattern: string, value: T) => void): void {
    for (const [p, e] of this.byPattern) for (const v of e.values) visit(p, v);
  }
}

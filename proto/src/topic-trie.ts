/**
 * A trie of subscription patterns keyed by topic tokens: the one matching
 * structure used by the node's routing table, by peer interest tables and by
 * the SDK's local dispatch. `*` matches one token, `>` one or more trailing
 * tokens. Values are compared by identity.
 */

class TrieNode<T> {
  /** Made at the first child: a leaf (most nodes: each subscription's last token) holds no empty Map (~180 B). */
  children: Map<string, TrieNode<T>> | undefined;
  star: TrieNode<T> | undefined;
  /** Values whose pattern ends at this node. */
  here: Set<T> | undefined;
  /** Values whose pattern ends with `>` after this node. */
  rest: Set<T> | undefined;

  isEmpty(): boolean {
    return !this.children?.size && !this.star && !this.here?.size && !this.rest?.size;
  }
}

export class TopicTrie<T> {
  /** @internal Read by forEachEntry. */
  readonly root = new TrieNode<T>();
  private count = 0;
  private gen = 0;

  /** Number of (pattern, value) entries. */
  get size(): number {
    return this.count;
  }

  /** Changes on every add or remove; lets callers cache match results. */
  get version(): number {
    return this.gen;
  }

  /** Adds `value` under `pattern`; returns false when it was already there. */
  add(pattern: string, value: T): boolean {
    const tokens = pattern.split('.');
    let node = this.root;
    for (let i = 0; i < tokens.length; i++) {
      const tok = tokens[i]!;
      if (tok === '>' && i === tokens.length - 1) {
        node.rest ??= new Set();
        return this.insert(node.rest, value);
      }
      if (tok === '*') {
        node = node.star ??= new TrieNode<T>();
      } else {
        let next = node.children?.get(tok);
        if (!next) (node.children ??= new Map()).set(tok, (next = new TrieNode<T>()));
        node = next;
      }
    }
    node.here ??= new Set();
    return this.insert(node.here, value);
  }

  private insert(set: Set<T>, value: T): boolean {
    if (set.has(value)) return false;
    set.add(value);
    this.count++;
    this.gen++;
    return true;
  }

  /** Removes `value` from `pattern`; returns false when it was not there. */
  remove(pattern: string, value: T): boolean {
    const tokens = pattern.split('.');
    const path: Array<[TrieNode<T>, string]> = [];
    let node: TrieNode<T> | undefined = this.root;
    let removed = false;
    for (let i = 0; i < tokens.length && node; i++) {
      const tok = tokens[i]!;
      if (tok === '>' && i === tokens.length - 1) {
        removed = node.rest?.delete(value) ?? false;
        node = undefined;
        break;
      }
      path.push([node, tok]);
      node = tok === '*' ? node.star : node.children?.get(tok);
    }
    if (node) removed = node.here?.delete(value) ?? false;
    if (!removed) return false;
    this.count--;
    this.gen++;
    // Prune nodes left empty, deepest first.
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, tok] = path[i]!;
      const child = tok === '*' ? parent.star : parent.children?.get(tok);
      if (!child || !child.isEmpty()) break;
      if (tok === '*') parent.star = undefined;
      else parent.children!.delete(tok);
    }
    return true;
  }

  /**
   * Calls `visit` for each value whose pattern matches the literal `topic`.
   * A value stored under several matching patterns is visited once per
   * pattern; callers that need each value once deduplicate.
   *
   * Walks `topic` in place (token bounds by indexOf, one slice per token
   * looked up): no split array. A miss in a route or dispatch cache lands
   * here on every event once more topics are in flight than the cache
   * holds, and `split` cost about 3× this walk (~200 vs ~80 ns for
   * `bench.events.t<i>`, Node 20).
   */
  match(topic: string, visit: (value: T) => void): void {
    this.walk(this.root, topic, 0, visit);
  }

  /** Matches the tokens of `topic` from index `start` (topic.length + 1: none left). */
  private walk(node: TrieNode<T>, topic: string, start: number, visit: (value: T) => void): void {
    const done = start > topic.length;
    if (node.rest && !done) for (const v of node.rest) visit(v);
    if (done) {
      if (node.here) for (const v of node.here) visit(v);
      return;
    }
    let end = topic.indexOf('.', start);
    if (end < 0) end = topic.length;
    if (node.children !== undefined) {
      const next = node.children.get(topic.slice(start, end));
      if (next) this.walk(next, topic, end + 1, visit);
    }
    if (node.star) this.walk(node.star, topic, end + 1, visit);
  }
}

/**
 * Calls `visit` for every (pattern, value) entry of `trie`. A function, not
 * a method: a node lists its routing table, a client never lists its trie,
 * and a bundler drops an unused function but keeps every method of a class
 * it uses (the browser SDK bundle is 93 B gzip smaller without it).
 */
export function forEachEntry<T>(trie: TopicTrie<T>, visit: (pattern: string, value: T) => void): void {
  const rec = (node: TrieNode<T>, prefix: string): void => {
    const p = (tok: string): string => (prefix ? `${prefix}.${tok}` : tok);
    if (node.here) for (const v of node.here) visit(prefix, v);
    if (node.rest) for (const v of node.rest) visit(p('>'), v);
    if (node.children) for (const [tok, child] of node.children) rec(child, p(tok));
    if (node.star) rec(node.star, p('*'));
  };
  rec(trie.root, '');
}

/**
 * A trie of subscription patterns keyed by topic tokens: the one matching
 * structure used by the node's routing table, by peer interest tables and by
 * the SDK's local dispatch. `*` matches one token, `>` one or more trailing
 * tokens. Values are compared by identity.
 */

/**
 * The values at one place of the trie: a value alone is held as itself, two
 * or more in a Many (which keeps holding the last one left by removals: see
 * without). A Set holding one value costs ~150 B, and a node's
 * routing table holds one value per subscribed pattern (an owner's
 * OwnedPattern): 100,000 subscriptions held 15 MB of one-value Sets. A class
 * of this module, so no value can be taken for one.
 */
class Many<T> {
  constructor(readonly all: Set<T>) {}
}
type Held<T> = T | Many<T>;

function holds<T>(held: Held<T> | undefined, value: T): boolean {
  return held instanceof Many ? held.all.has(value) : held === value;
}

/** `held` with `value`, which it does not hold. */
function withValue<T>(held: Held<T> | undefined, value: T): Held<T> {
  if (held === undefined) return value;
  if (held instanceof Many) {
    held.all.add(value);
    return held;
  }
  return new Many(new Set([held, value]));
}

/**
 * `held` without `value`, which it holds: undefined once empty. A Many stays
 * one down to its last value: turned back into that value, a visit going
 * through its Set (a visitor that removes values) went on to values removed
 * after it.
 */
function without<T>(held: Held<T>, value: T): Held<T> | undefined {
  return held instanceof Many && held.all.delete(value) && held.all.size > 0 ? held : undefined;
}

function visitHeld<T>(held: Held<T> | undefined, visit: (value: T) => void): void {
  if (held instanceof Many) for (const v of held.all) visit(v);
  else if (held !== undefined) visit(held);
}

/**
 * A child of a node, by its token: a node, or, for a place that only holds
 * values whose pattern ends there (most: each subscription's last literal
 * token), those values themselves. A TrieNode object cost 56 B per
 * subscribed pattern (issue #17's memory per subscription); a value is never
 * a TrieNode (a class of this module), so the two are told apart by class.
 */
type Child<T> = TrieNode<T> | Held<T>;

class TrieNode<T> {
  /** Made at the first child: a leaf (most nodes: each subscription's last token) holds no empty Map (~180 B). */
  children: Map<string, Child<T>> | undefined;
  star: TrieNode<T> | undefined;
  /** Values whose pattern ends at this node. */
  here: Held<T> | undefined;
  /** Values whose pattern ends with `>` after this node. */
  rest: Held<T> | undefined;

  isEmpty(): boolean {
    return this.children === undefined && !this.star && this.here === undefined && this.rest === undefined;
  }
}

/** `T`: values compared by identity; never undefined or null. */
export class TopicTrie<T extends NonNullable<unknown>> {
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
        if (holds(node.rest, value)) return false;
        node.rest = withValue(node.rest, value);
        return this.added();
      }
      const next = tok === '*' ? (node.star ??= new TrieNode<T>()) : node.children?.get(tok);
      if (next instanceof TrieNode) {
        node = next;
        continue;
      }
      const children = (node.children ??= new Map());
      // The last token ends at values of its own (a node is made only when a pattern goes on from there).
      if (i === tokens.length - 1) {
        if (holds(next, value)) return false;
        children.set(tok, withValue(next, value));
        return this.added();
      }
      children.set(tok, (node = new TrieNode<T>()));
      node.here = next;
    }
    if (holds(node.here, value)) return false;
    node.here = withValue(node.here, value);
    return this.added();
  }

  private added(): boolean {
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
        if ((removed = holds(node.rest, value))) node.rest = without(node.rest!, value);
        node = undefined;
        break;
      }
      const next: Child<T> | undefined = tok === '*' ? node.star : node.children?.get(tok);
      path.push([node, tok]);
      if (next === undefined || next instanceof TrieNode) {
        node = next;
        continue;
      }
      // A last token's values: a pattern that goes on past them is not there.
      if (i < tokens.length - 1 || !(removed = holds(next, value))) return false;
      const left = without(next, value);
      if (left !== undefined) node.children!.set(tok, left);
      else node.children!.delete(tok);
      node = undefined;
    }
    if (node && (removed = holds(node.here, value))) node.here = without(node.here!, value);
    if (!removed) return false;
    this.count--;
    this.gen++;
    // Prune nodes left empty (and a token whose values are gone), deepest first.
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, tok] = path[i]!;
      const child = tok === '*' ? parent.star : parent.children?.get(tok);
      if (child instanceof TrieNode ? !child.isEmpty() : child !== undefined) break;
      if (tok === '*') parent.star = undefined;
      else if ((parent.children!.delete(tok), parent.children!.size === 0)) parent.children = undefined;
    }
    return true;
  }

  /**
   * Calls `visit` for each value whose pattern matches the literal `topic`.
   * A value stored under several matching patterns is visited once per
   * pattern; callers that need each value once deduplicate. A value removed
   * during the visit is not visited after; one added may or may not be.
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
    if (!done) visitHeld(node.rest, visit);
    else {
      visitHeld(node.here, visit);
      return;
    }
    let end = topic.indexOf('.', start);
    if (end < 0) end = topic.length;
    if (node.children !== undefined) {
      const next = node.children.get(topic.slice(start, end));
      if (next instanceof TrieNode) this.walk(next, topic, end + 1, visit);
      else if (next !== undefined && end === topic.length) visitHeld(next, visit);
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
export function forEachEntry<T extends NonNullable<unknown>>(trie: TopicTrie<T>, visit: (pattern: string, value: T) => void): void {
  const rec = (node: TrieNode<T>, prefix: string): void => {
    const p = (tok: string): string => (prefix ? `${prefix}.${tok}` : tok);
    visitHeld(node.here, (v) => visit(prefix, v));
    visitHeld(node.rest, (v) => visit(p('>'), v));
    if (node.children) for (const [tok, child] of node.children) child instanceof TrieNode ? rec(child, p(tok)) : visitHeld(child, (v) => visit(p(tok), v));
    if (node.star) rec(node.star, p('*'));
  };
  rec(trie.root, '');
}

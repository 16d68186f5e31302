/**
 * Literal topics by token, each with a value, searched by a subscription
 * pattern: the reverse of proto's TopicTrie (which holds patterns and is
 * searched by a topic). The routing cache uses it to find the cached topics
 * a subscription change matches (receivers-cache.ts).
 */
export class TopicIndex<V> {
  private root: TopicNode<V> = emptyNode();
  private count = 0;
  /** Values found by one search (reused; handed to the caller, emptied at the next search). */
  private readonly found: V[] = [];
  private budget = 0;

  /** Tokens held (the index's size in nodes: each is one small object, its token and maybe a Map). */
  get nodes(): number {
    return this.count;
  }

  /** Sets the value of the literal `topic` (valid: no empty token, no wildcard); adds at most one node per token. */
  set(topic: string, value: V): void {
    let node = this.root;
    for (let from = 0; from <= topic.length; ) {
      let to = topic.indexOf('.', from);
      if (to < 0) to = topic.length;
      const tok = topic.slice(from, to);
      from = to + 1;
      let kid = kidOf(node, tok);
      if (kid === undefined) {
        kid = emptyNode<V>();
        this.count++;
        if (node.kid === undefined) {
          node.tok = tok;
          node.kid = kid;
        } else (node.kids ??= new Map()).set(tok, kid);
      }
      node = kid;
    }
    node.value = value;
  }

  /** Removes `topic` if its value is `value`, and the tokens left with nothing under them. */
  delete(topic: string, value: V): void {
    const tokens = topic.split('.');
    const path: Array<TopicNode<V>> = [this.root];
    for (const tok of tokens) {
      const kid = kidOf(path[path.length - 1]!, tok);
      if (kid === undefined) return;
      path.push(kid);
    }
    const leaf = path[tokens.length]!;
    if (leaf.value !== value) return;
    leaf.value = undefined;
    for (let i = tokens.length; i > 0; i--) {
      const node = path[i]!;
      if (node.value !== undefined || node.kid !== undefined) return;
      removeKid(path[i - 1]!, tokens[i - 1]!);
      this.count--;
    }
  }

  /**
   * The values of the topics `pattern` matches (`*` one token, `>` one or
   * more), or undefined when finding them would look at more than `maxVisit`
   * tokens. The array is reused by the next call.
   */
  match(pattern: string, maxVisit: number): readonly V[] | undefined {
    this.budget = maxVisit;
    this.found.length = 0;
    return this.collect(this.root, pattern.split('.'), 0) ? this.found : undefined;
  }

  clear(): void {
    this.root = emptyNode();
    this.count = 0;
    this.found.length = 0;
  }

  private collect(node: TopicNode<V>, tokens: readonly string[], i: number): boolean {
    if (--this.budget < 0) return false;
    if (i === tokens.length) {
      if (node.value !== undefined) this.found.push(node.value);
      return true;
    }
    const tok = tokens[i]!;
    if (tok === '>') return eachKid(node, (kid) => this.collectAll(kid));
    if (tok === '*') return eachKid(node, (kid) => this.collect(kid, tokens, i + 1));
    const kid = kidOf(node, tok);
    return kid === undefined || this.collect(kid, tokens, i + 1);
  }

  private collectAll(node: TopicNode<V>): boolean {
    if (--this.budget < 0) return false;
    if (node.value !== undefined) this.found.push(node.value);
    return eachKid(node, (kid) => this.collectAll(kid));
  }
}

/**
 * A token: the value of the topic that ends here, and the next tokens: the
 * first one inline (most tokens of unique topics have one next token, and a
 * Map each made an insert ~1 us slower), the others in `kids`. The inline
 * slot is empty only when there is no next token.
 */
interface TopicNode<V> {
  value: V | undefined;
  tok: string | undefined;
  kid: TopicNode<V> | undefined;
  kids: Map<string, TopicNode<V>> | undefined;
}

function emptyNode<V>(): TopicNode<V> {
  return { value: undefined, tok: undefined, kid: undefined, kids: undefined };
}

function kidOf<V>(node: TopicNode<V>, tok: string): TopicNode<V> | undefined {
  return node.tok === tok ? node.kid : node.kids?.get(tok);
}

/** Calls `visit` for each next token's node while it returns true; false when one returned false. */
function eachKid<V>(node: TopicNode<V>, visit: (kid: TopicNode<V>) => boolean): boolean {
  if (node.kid !== undefined && !visit(node.kid)) return false;
  if (node.kids !== undefined) for (const kid of node.kids.values()) if (!visit(kid)) return false;
  return true;
}

function removeKid<V>(node: TopicNode<V>, tok: string): void {
  if (node.tok !== tok) {
    node.kids?.delete(tok);
    return;
  }
  const next = node.kids?.entries().next();
  if (next === undefined || next.done === true) {
    node.tok = undefined;
    node.kid = undefined;
    return;
  }
  const [t, k] = next.value;
  node.kids!.delete(t);
  node.tok = t;
  node.kid = k;
}

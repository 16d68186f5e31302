import { copyBytes, equalBytesAt, topicHash, type Frame } from '@meshbus/proto';

/**
 * The routing table's cache of receivers per topic: keyed by the topic hash
 * from the frame header, so a repeated topic costs one hash-map hit and a
 * byte compare instead of a string decode and a trie walk.
 *
 * A change of the table (a subscribe, an unsubscribe, a limit) drops the
 * entries of exactly the topics its pattern matches, found through an index
 * of the cached topics by token, at the change: a publish pays nothing for
 * changes elsewhere. (Before, each entry replayed the changes made since it
 * was computed at its next use, so every cached topic in flight checked
 * every change: with 1,000 topics in flight and 2,000 changes a second,
 * ~23 % of a busy node's time, bench/README "Subscriptions that come and
 * go".) NATS's sublist likewise removes from its cache the entries a new
 * subscription matches.
 *
 * Bounds: at most MAX_CACHE entries (then emptied); a change looks at most at
 * MAX_VISIT index nodes, past which the whole cache is dropped instead (a
 * `>` subscribed and unsubscribed in a loop costs each change a bounded walk,
 * then every topic one recomputation at its next publish, as any full
 * invalidation does).
 */
export class ReceiversCache<R> {
  private readonly byKey = new Map<number, CacheEntry<R>>();
  private root: TopicNode<R> = {};
  /**
   * The entry of the last hit or store: an input chunk usually carries runs of
   * one topic, and a hit here skips the map lookup.
   */
  private last: CacheEntry<R> | undefined;
  /** Entries found by the walk of one change (reused; emptied after each). */
  private readonly hits: Array<CacheEntry<R>> = [];
  private visits = 0;

  get size(): number {
    return this.byKey.size;
  }

  /** The cached receivers of `frame`'s topic, if any (the topic bytes are compared, not only the hash). */
  get(frame: Frame): R | undefined {
    const hash = frame.topicHash;
    const l = this.last;
    // Keyed by the low 30 bits: a small integer (Smi) in V8, hashed without a heap number (~6-18 ns a lookup here).
    const e = l !== undefined && l.hash === hash ? l : this.byKey.get(hash & SMI_MASK);
    if (e === undefined || e.hash !== hash || e.bytes.length !== frame.topicLen || !equalBytesAt(e.bytes, frame.buf, frame.topicStart)) return undefined;
    this.last = e;
    return e.receivers;
  }

  /**
   * Caches `receivers` for `frame`'s topic (`topic`, decoded). Keyed by the
   * real hash of the bytes: a frame whose header hash is not its topic's is
   * not cached, so a client sending a wrong hash cannot poison another
   * topic's entry.
   */
  set(frame: Frame, topic: string, receivers: R): void {
    if (this.byKey.size >= MAX_CACHE) this.clear();
    const hash = frame.topicHash;
    const start = frame.topicStart;
    const bytes = copyBytes(frame.buf, start, start + frame.topicLen);
    if (topicHash(bytes) !== hash) return;
    const key = hash & SMI_MASK;
    const old = this.byKey.get(key);
    if (old !== undefined) this.unindex(old);
    const entry: CacheEntry<R> = { hash, bytes, topic, receivers };
    this.byKey.set(key, entry);
    this.index(entry);
    // The new entry is the last one too: a run of its topic continues right after a change.
    this.last = entry;
  }

  /** Drops the entries of the topics `pattern` matches (`*` one token, `>` one or more; may drop more, never fewer). */
  invalidate(pattern: string): void {
    const tokens = pattern.split('.');
    this.visits = 0;
    const hits = this.hits;
    try {
      if (!this.collect(this.root, tokens, 0)) {
        this.clear();
        return;
      }
      for (const e of hits) this.drop(e);
    } finally {
      hits.length = 0;
    }
  }

  clear(): void {
    this.byKey.clear();
    this.root = {};
    this.last = undefined;
  }

  /** Collects into `hits` the entries under `node` that `tokens[i..]` matches; false past MAX_VISIT nodes. */
  private collect(node: TopicNode<R>, tokens: readonly string[], i: number): boolean {
    if (++this.visits > MAX_VISIT) return false;
    if (i === tokens.length) {
      if (node.entry !== undefined) this.hits.push(node.entry);
      return true;
    }
    const kids = node.kids;
    if (kids === undefined) return true;
    const tok = tokens[i]!;
    if (tok === '>') {
      for (const kid of kids.values()) if (!this.collectAll(kid)) return false;
      return true;
    }
    if (tok === '*') {
      for (const kid of kids.values()) if (!this.collect(kid, tokens, i + 1)) return false;
      return true;
    }
    const kid = kids.get(tok);
    return kid === undefined || this.collect(kid, tokens, i + 1);
  }

  private collectAll(node: TopicNode<R>): boolean {
    if (++this.visits > MAX_VISIT) return false;
    if (node.entry !== undefined) this.hits.push(node.entry);
    if (node.kids !== undefined) for (const kid of node.kids.values()) if (!this.collectAll(kid)) return false;
    return true;
  }

  private drop(e: CacheEntry<R>): void {
    const key = e.hash & SMI_MASK;
    if (this.byKey.get(key) === e) this.byKey.delete(key);
    if (this.last === e) this.last = undefined;
    this.unindex(e);
  }

  private index(e: CacheEntry<R>): void {
    let node = this.root;
    for (const tok of e.topic.split('.')) {
      const kids = (node.kids ??= new Map());
      let kid = kids.get(tok);
      if (kid === undefined) kids.set(tok, (kid = {}));
      node = kid;
    }
    node.entry = e;
  }

  /** Removes `e` from the index, and the nodes left empty on its path. */
  private unindex(e: CacheEntry<R>): void {
    const path: Array<TopicNode<R>> = [this.root];
    const tokens = e.topic.split('.');
    for (const tok of tokens) {
      const kid = path[path.length - 1]!.kids?.get(tok);
      if (kid === undefined) return;
      path.push(kid);
    }
    const leaf = path[path.length - 1]!;
    if (leaf.entry !== e) return;
    leaf.entry = undefined;
    for (let i = tokens.length; i > 0; i--) {
      const node = path[i]!;
      if (node.entry !== undefined || (node.kids !== undefined && node.kids.size > 0)) return;
      path[i - 1]!.kids!.delete(tokens[i - 1]!);
    }
  }
}

interface CacheEntry<R> {
  /** The topic's real hash (the map key keeps only its low 30 bits). */
  readonly hash: number;
  readonly bytes: Uint8Array;
  readonly topic: string;
  readonly receivers: R;
}

/** A token of the cached topics' index: the entry of the topic that ends here, and the next tokens. */
interface TopicNode<R> {
  kids?: Map<string, TopicNode<R>>;
  entry?: CacheEntry<R>;
}

const SMI_MASK = 0x3fffffff;
const MAX_CACHE = 16_384;
/** Index nodes one change may look at before the whole cache is dropped instead. */
const MAX_VISIT = 1024;

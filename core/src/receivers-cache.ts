import { copyBytes, equalBytesAt, topicHash, topicMatches, type Frame } from '@meshbus/proto';
import { TopicIndex } from './topic-index.js';

/**
 * The routing table's cache of receivers per topic: keyed by the topic hash
 * from the frame header, so a repeated topic costs one hash-map hit and a
 * byte compare instead of a string decode and a trie walk.
 *
 * A change of the table (a subscribe, an unsubscribe, a limit) drops the
 * entries of the topics its pattern matches, found through an index of the
 * cached topics by token (topic-index.ts), at the change: a publish pays
 * nothing for changes elsewhere. (Before, every entry replayed at its next
 * use the changes made since it was computed, so every cached topic in
 * flight checked every change: with 1,000 topics in flight and 2,000 changes
 * a second, 23 % of a busy node's time, bench/README "Subscriptions that
 * come and go".) NATS's sublist likewise drops the entries a new
 * subscription matches.
 *
 * A topic enters the index at its first hit after a change, not when it is
 * stored: a topic published once (a device's first event, a one-off) never
 * pays for it (an insert cost a miss ~1.5 ×). An entry not in the index (not
 * hit since a change, or the index full: MAX_INDEX_NODES tokens, so topics of
 * many tokens cannot make it hold more than ~5 MB) is checked at each hit
 * against the changes made since it was last checked (the last CHANGE_LOG;
 * further behind, it is recomputed), and entries that fall that far behind
 * are dropped by sweep(), so none keeps the receivers of a closed connection.
 *
 * Bounds: at most MAX_CACHE entries (then emptied); a change looks at most at
 * MAX_VISIT tokens of the index, past which the whole cache is dropped
 * instead (`>` subscribed and unsubscribed in a loop: each change a bounded
 * walk, then each topic one recomputation at its next publish, as any full
 * invalidation costs).
 */
export class ReceiversCache<R> {
  private readonly byKey = new Map<number, CacheEntry<R>>();
  private readonly index = new TopicIndex<CacheEntry<R>>();
  /** The entry of the last hit or store: an input chunk usually carries runs of one topic, and a hit here skips the map lookup. */
  private last: CacheEntry<R> | undefined;
  /** Counts changes; an entry not in the index carries the version it was last checked at. */
  private version = 0;
  /** The patterns of the last CHANGE_LOG changes: change v (the one that made the version v + 1) at v % CHANGE_LOG. */
  private readonly changes: string[] = new Array<string>(CHANGE_LOG);
  /** When sweep() last looked at the cache (Date.now()). */
  private sweptAt = 0;

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
    if (e.version >= 0 && e.version !== this.version && !this.admit(e)) return undefined;
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
    if (old !== undefined) this.drop(old);
    const entry: CacheEntry<R> = { hash, bytes, topic, receivers, version: this.version };
    this.byKey.set(key, entry);
    // The new entry is the last one too: a run of its topic continues right after a change.
    this.last = entry;
  }

  /** Drops the entries of the topics `pattern` matches (`*` one token, `>` one or more). */
  invalidate(pattern: string): void {
    this.changes[this.version & (CHANGE_LOG - 1)] = pattern;
    this.version++;
    const hits = this.index.match(pattern, MAX_VISIT);
    if (hits === undefined) this.clear();
    else for (let i = hits.length - 1; i >= 0; i--) this.drop(hits[i]!);
  }

  /**
   * Drops the entries not yet indexed that are too far behind to be checked
   * (more than CHANGE_LOG changes): at most once per SWEEP_EVERY_MS, from the
   * node's timer. Such an entry of a topic published once would otherwise keep
   * its receivers, closed connections among them (~3.5 KB of heap each,
   * core/test/security/closed-receivers.test.ts). A pass over a full cache takes ~0.2 ms.
   */
  sweep(now = Date.now()): void {
    if (now - this.sweptAt < SWEEP_EVERY_MS) return;
    this.sweptAt = now;
    const v = this.version;
    for (const e of this.byKey.values()) if (e.version >= 0 && v - e.version > CHANGE_LOG) this.drop(e);
  }

  clear(): void {
    this.byKey.clear();
    this.index.clear();
    this.last = undefined;
  }

  /**
   * At a hit of an entry not in the index: whether no change since it was
   * checked matches its topic; then it is indexed, or, with the index full,
   * brought to the current version.
   */
  private admit(e: CacheEntry<R>): boolean {
    const now = this.version;
    let ok = now - e.version <= CHANGE_LOG;
    for (let v = e.version; ok && v < now; v++) if (topicMatches(this.changes[v & (CHANGE_LOG - 1)]!, e.topic)) ok = false;
    if (!ok) {
      this.drop(e);
      return false;
    }
    if (this.index.nodes + tokenCount(e.topic) > MAX_INDEX_NODES) e.version = now;
    else {
      e.version = INDEXED;
      this.index.set(e.topic, e);
    }
    return true;
  }

  private drop(e: CacheEntry<R>): void {
    const key = e.hash & SMI_MASK;
    if (this.byKey.get(key) === e) this.byKey.delete(key);
    if (this.last === e) this.last = undefined;
    if (e.version === INDEXED) this.index.delete(e.topic, e);
  }
}

interface CacheEntry<R> {
  /** The topic's real hash (the map key keeps only its low 30 bits). */
  readonly hash: number;
  readonly bytes: Uint8Array;
  readonly topic: string;
  readonly receivers: R;
  /** INDEXED, or the change count when it was stored or last checked (not in the index). */
  version: number;
}

function tokenCount(topic: string): number {
  let n = 1;
  for (let i = topic.indexOf('.'); i >= 0; i = topic.indexOf('.', i + 1)) n++;
  return n;
}

const INDEXED = -1;
const SMI_MASK = 0x3fffffff;
const MAX_CACHE = 16_384;
/** Changes an entry not in the index can be checked against at a hit. A power of two. */
const CHANGE_LOG = 64;
/** How often sweep() looks at the cache at most, ms. */
const SWEEP_EVERY_MS = 1000;
/** Tokens the index holds at most (~80 B each): 4 a topic for a full cache. */
const MAX_INDEX_NODES = 65_536;
/** Index tokens one change may look at before the whole cache is dropped instead. */
const MAX_VISIT = 1024;

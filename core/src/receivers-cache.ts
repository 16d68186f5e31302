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
 * MAX_VISIT tokens of the index, past which the index is emptied instead
 * and its entries are checked at their next hit against the changes from
 * that one on, like entries never indexed (a new index generation, `epoch`).
 * Emptying the whole cache there let one SUB matching nothing (`dev.*.hum`
 * with 12,000 devices cached, or `*.*.zz`) cost a recomputation of every
 * topic in flight: churning it, 3.7 × the publish cost of the lazy check
 * alone (core/test/security/route-cache-cost.test.ts).
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
  /**
   * The index's generation: a change that would look at more than MAX_VISIT
   * tokens of it starts a new, empty one, and the entries of the old one are
   * checked lazily again, like entries never indexed, from that change on.
   */
  private epoch = 0;
  /** Per generation E (at E % CHANGE_LOG), the version its entries are known fresh at: the change that ended it is the first to check. */
  private readonly epochEnds: number[] = new Array<number>(CHANGE_LOG).fill(0);
  /** The version after the last change that emptied the index: for CHANGE_LOG changes after it, hits do not index (admit). */
  private overflowAt = -Infinity;
  /** When sweep() last looked at the cache (Date.now()). */
  private sweptAt = 0;

  /** Changes recorded so far (invalidate): receivers found at one count are still the answer while it holds. */
  get changeCount(): number {
    return this.version;
  }

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
    if (e.epoch !== this.epoch && (e.epoch >= 0 || e.version !== this.version) && !this.admit(e)) return undefined;
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
    const entry: CacheEntry<R> = { hash, bytes, topic, receivers, version: this.version, epoch: NOT_INDEXED };
    this.byKey.set(key, entry);
    // The new entry is the last one too: a run of its topic continues right after a change.
    this.last = entry;
  }

  /** Drops the entries of the topics `pattern` matches (`*` one token, `>` one or more). */
  invalidate(pattern: string): void {
    this.changes[this.version & (CHANGE_LOG - 1)] = pattern;
    this.version++;
    const hits = this.index.match(pattern, MAX_VISIT);
    if (hits !== undefined) {
      for (let i = hits.length - 1; i >= 0; i--) this.drop(hits[i]!);
      return;
    }
    // Too wide a search (`dev.*.hum` over thousands of cached devices): the indexed entries are checked
    // against this change and the next ones at their next hit, as entries not indexed are. Emptying the
    // whole cache instead made one SUB matching nothing cost a recomputation of every topic in flight.
    this.epochEnds[this.epoch & (CHANGE_LOG - 1)] = this.version - 1;
    this.epoch++;
    this.index.clear();
    this.overflowAt = this.version;
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
    for (const e of this.byKey.values()) if (e.epoch !== this.epoch && v - this.checkedAt(e) > CHANGE_LOG) this.drop(e);
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
    const from = this.checkedAt(e);
    e.epoch = NOT_INDEXED;
    let ok = now - from <= CHANGE_LOG;
    for (let v = from; ok && v < now; v++) if (topicMatches(this.changes[v & (CHANGE_LOG - 1)]!, e.topic)) ok = false;
    if (!ok) {
      this.drop(e);
      return false;
    }
    // Right after a change too wide for the index (and maybe more to come: `*.*.x` subscribed and unsubscribed
    // in a loop), entries stay checked lazily: re-indexing every topic at each such change cost more than the check.
    if (now - this.overflowAt < CHANGE_LOG || this.index.nodes + tokenCount(e.topic) > MAX_INDEX_NODES) e.version = now;
    else {
      e.epoch = this.epoch;
      this.index.set(e.topic, e);
    }
    return true;
  }

  /** The version `e` (not in the current index) is known fresh at: the changes from it on are to check; -Infinity when unknown. */
  private checkedAt(e: CacheEntry<R>): number {
    if (e.epoch === NOT_INDEXED) return e.version;
    // Indexed in a generation since ended: fresh until the change that ended it, if that is still known.
    return this.epoch - e.epoch <= CHANGE_LOG ? this.epochEnds[e.epoch & (CHANGE_LOG - 1)]! : -Infinity;
  }

  private drop(e: CacheEntry<R>): void {
    const key = e.hash & SMI_MASK;
    if (this.byKey.get(key) === e) this.byKey.delete(key);
    if (this.last === e) this.last = undefined;
    if (e.epoch === this.epoch) this.index.delete(e.topic, e);
  }
}

interface CacheEntry<R> {
  /** The topic's real hash (the map key keeps only its low 30 bits). */
  readonly hash: number;
  readonly bytes: Uint8Array;
  readonly topic: string;
  readonly receivers: R;
  /** Not in an index: the change count when it was stored or last checked. */
  version: number;
  /** The index generation it is in (ReceiversCache.epoch), or NOT_INDEXED. */
  epoch: number;
}

function tokenCount(topic: string): number {
  let n = 1;
  for (let i = topic.indexOf('.'); i >= 0; i = topic.indexOf('.', i + 1)) n++;
  return n;
}

const NOT_INDEXED = -1;
const SMI_MASK = 0x3fffffff;
const MAX_CACHE = 16_384;
/** Changes an entry not in the index can be checked against at a hit. A power of two. */
const CHANGE_LOG = 64;
/** How often sweep() looks at the cache at most, ms. */
const SWEEP_EVERY_MS = 1000;
/** Tokens the index holds at most (~80 B each): 4 a topic for a full cache. */
const MAX_INDEX_NODES = 65_536;
/**
 * Index tokens one change may look at before the index is emptied instead
 * (its entries checked lazily, as at b6ac1a5). At 1,024, `dev.*.h<i>` over
 * 1,000 cached devices looked at them all at each change, matching none:
 * ~12 µs a change against ~2.5 with nothing cached (core/test/security/route-change-cost.test.ts).
 */
const MAX_VISIT = 256;

import type { Frame } from '@meshbus/proto';
import type { PeerLink } from './peer-link.js';

/** Origins whose last sequence is remembered; the oldest is forgotten past it (it then loses only this protection). */
const MAX_ORIGINS = 4096;
/**
 * How far ahead of this node's clock a sequence is still remembered, µs (an
 * hour: far beyond clock skew and beyond what a node's counter can gain on
 * its clock). Further ahead it is admitted but not remembered: otherwise one
 * event a peer forged (or a node with a wildly wrong clock) stamped far in the
 * future would make this node drop every later event of that origin as old.
 */
const MAX_AHEAD_US = 3600 * 1e6;

/**
 * Per-publisher order through link changes (full mesh, leaves, gateways).
 * Every event carries its origin node's increasing sequence (core stamps it
 * from Date.now() × 1000, so a restarted node does not go back). Two links
 * to one place can briefly coexist (one replacing a stalled one, a leaf or a
 * gateway failing over), and an event still in flight on the old one must not
 * overtake newer ones: per-publisher order wins over delivery (at-most-once
 * allows the drop, not the reorder). Copies with the same sequence (a plain
 * and a queue-group copy of one event) pass.
 */
export class OriginOrder {
  /** The last sequence per origin, in a mutable record: one map lookup per event, no set. */
  private readonly lastSeq = new Map<string, { seq: number }>();
  /** The origin and record of the last event admitted (events come in runs of one origin). */
  private lastId: string | undefined;
  private lastRec: { seq: number } | undefined;
  /**
   * Sequences up to this are remembered without reading the clock: this
   * node's clock (µs) + MAX_AHEAD_US when last read. The clock only moves
   * on, so a stale bound is a lower one: a sequence above it reads the
   * clock again before it is refused memory (a clock read per event was
   * ~40 ns, about a fifth of a node's cost of a peer's event at 16 B).
   */
  private aheadLimit = 0;

  /** True when `f` (from `link`) is not older than what was delivered from its origin. */
  admit(link: PeerLink, f: Frame): boolean {
    const seq = f.seq;
    // The link's peer for its own events (compared without making a string), else
    // the node behind it: a hub relays its leaves' events, a gateway its region's.
    const own = link.stampedByPeer(f);
    const id = own ? link.peer!.id : f.origin;
    let rec = id === this.lastId ? this.lastRec : this.lastSeq.get(id);
    if (rec === undefined) {
      if (!own && this.lastSeq.size >= MAX_ORIGINS) this.forget(this.lastSeq.keys().next().value!);
      this.lastSeq.set(id, (rec = { seq: 0 }));
    }
    this.lastId = id;
    this.lastRec = rec;
    if (seq < rec.seq) return false;
    if (seq > rec.seq && (seq <= this.aheadLimit || seq <= (this.aheadLimit = Date.now() * 1000 + MAX_AHEAD_US))) rec.seq = seq;
    return true;
  }

  /** Nothing more comes from `origin` over the link that died; a node back under the same id starts afresh. */
  forget(origin: string): void {
    this.lastSeq.delete(origin);
    if (origin === this.lastId) {
      this.lastId = undefined;
      this.lastRec = undefined;
    }
  }
}

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
  private readonly lastSeq = new Map<string, number>();

  /** True when `f` (from `link`) is not older than what was delivered from its origin. */
  admit(link: PeerLink, f: Frame): boolean {
    const seq = f.seq;
    // The link's peer for its own events (compared without making a string), else
    // the node behind it: a hub relays its leaves' events, a gateway its region's.
    const own = link.stampedByPeer(f);
    const id = own ? link.peer!.id : f.origin;
    if (!own && !this.lastSeq.has(id) && this.lastSeq.size >= MAX_ORIGINS) this.lastSeq.delete(this.lastSeq.keys().next().value!);
    const last = this.lastSeq.get(id) ?? 0;
    if (seq < last) return false;
    if (seq > last && seq <= Date.now() * 1000 + MAX_AHEAD_US) this.lastSeq.set(id, seq);
    return true;
  }

  /** Nothing more comes from `origin` over the link that died; a node back under the same id starts afresh. */
  forget(origin: string): void {
    this.lastSeq.delete(origin);
  }
}

import { errorFrame } from '@meshbus/proto';
import type { OutboundQueue } from './outbound-queue.js';
import type { DropTag } from './subscriber.js';

/**
 * What a connection owes its 'drop' subscriptions (SPEC §10.6): the events
 * dropped for each sid since its last report, sent as ERROR
 * MB_ERR_EVENTS_DROPPED (not fatal), correlation = sid, ErrorBody `count`.
 * Made on a connection's first drop, so a connection that never drops
 * carries none. A drop is recorded per tag (the routing table's, shared by
 * every event of a route), its sids counted when reports are sent: before,
 * each dropped event cost one map update per sid of its tag, so a
 * connection that stopped reading with 10,000 'drop' subscriptions to `>`
 * made every event anyone published cost 10,000. Memory: one map entry per
 * 'drop' subscription that lost events since the last report, and one per
 * list of sids dropped for since the last call of `send`.
 */
export class DropReports {
  private readonly owed = new Map<number, number>();
  /** Drops not yet counted per sid, by list of sids (the routing table's, made once per pattern and receiver: few). */
  private readonly tags = new Map<readonly number[], number>();
  /** The queue's lastProgress when reports were last sent. */
  private reportedAt = 0;

  /** Reports are waiting. */
  get due(): boolean {
    return this.owed.size > 0 || this.tags.size > 0;
  }

  /** One event dropped, for every sid of `tag`. */
  record(tag: DropTag): void {
    if (tag.length === 0) return;
    // A list of sids, or (a receiver matched through several patterns) a list of such lists: O(patterns) per drop.
    if (typeof tag[0] === 'number') this.count(tag as readonly number[]);
    else for (let i = 0; i < tag.length; i++) this.count(tag[i] as readonly number[]);
  }

  private count(sids: readonly number[]): void {
    this.tags.set(sids, (this.tags.get(sids) ?? 0) + 1);
  }

  /** Counts the drops recorded by tag per sid: O(sids of the tags dropped since the last call), not O(sids) per drop. */
  private settle(): void {
    for (const [sids, n] of this.tags) for (let i = 0; i < sids.length; i++) this.owed.set(sids[i]!, (this.owed.get(sids[i]!) ?? 0) + n);
    this.tags.clear();
  }

  /**
   * Queues the reports owed to the sids `live` still has, as notices
   * (OutboundQueue.sendNotice: never a reason to close the connection); one
   * that does not fit waits for the next call; sids ended meanwhile are
   * forgotten. While `out` is congested and its wire took nothing since the
   * last round, nothing is sent: a reader that stopped gets one round, not
   * one per call (they would pile up in its queue).
   */
  send(out: OutboundQueue, live: { has(sid: number): boolean }): void {
    this.settle();
    if (this.owed.size === 0) return;
    if (out.congested && out.lastProgress === this.reportedAt) return;
    this.reportedAt = out.lastProgress;
    for (const [sid, count] of this.owed) {
      if (live.has(sid) && !out.sendNotice(errorFrame('MB_ERR_EVENTS_DROPPED', sid, `${count} events dropped for this 'drop' subscription (slow consumer)`, count))) return;
      this.owed.delete(sid);
    }
  }
}

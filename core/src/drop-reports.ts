import { errorFrame } from '@meshbus/proto';
import type { OutboundQueue } from './outbound-queue.js';
import type { DropTag } from './subscriber.js';

/**
 * What a connection owes its 'drop' subscriptions (SPEC §10.6): the events
 * dropped for each sid since its last report, sent as ERROR
 * MB_ERR_EVENTS_DROPPED (not fatal), correlation = sid, ErrorBody `count`.
 * Made on a connection's first drop, so a connection that never drops
 * carries none. Memory: one map entry per 'drop' subscription that lost
 * events since the last report.
 */
export class DropReports {
  private readonly owed = new Map<number, number>();
  /** The queue's lastProgress when reports were last sent. */
  private reportedAt = 0;

  /** Reports are waiting. */
  get due(): boolean {
    return this.owed.size > 0;
  }

  /** One event dropped, for every sid of `tag`. */
  record(tag: DropTag): void {
    for (let i = 0; i < tag.length; i++) this.owed.set(tag[i]!, (this.owed.get(tag[i]!) ?? 0) + 1);
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
    if (this.owed.size === 0) return;
    if (out.congested && out.lastProgress === this.reportedAt) return;
    this.reportedAt = out.lastProgress;
    for (const [sid, count] of this.owed) {
      if (live.has(sid) && !out.sendNotice(errorFrame('MB_ERR_EVENTS_DROPPED', sid, `${count} events dropped for this 'drop' subscription (slow consumer)`, count))) return;
      this.owed.delete(sid);
    }
  }
}

import { Frame, copyBytes, isMeshbusError, type ErrorCode, type Position, type SubAckBody, thrownText } from '@meshbus/proto';
import type { Logger } from '../logger.js';
import type { NodeStats } from '../stats.js';
import type { SequencedReceiver, Throttled } from '../subscriber.js';
import { storeErr, storeFailure } from './connection-error.js';
import { errorSite, throttled } from '../told-recently.js';
import { positionOf, withPosition } from './frames.js';
import type { HistoryStore, ReadResult } from './history-store.js';
import type { ResolvedTopicRule } from './store-config.js';

/** What a sequenced subscription needs from its connection. */
export interface SequencedOwner {
  /** Sends one event to subscription `sid` (a sid-addressed delivery). */
  deliver(f: Frame, sid: number): void;
  /** Sends the SUB's ACK, or a gap notice: {recovered, epoch, offset, ref?} with correlation = sid. */
  sendSubAck(sid: number, body: SubAckBody): void;
  /** Sends a non-fatal ERROR with correlation = sid, in order with the deliveries (e.g. a skipped corrupt entry). */
  notice(sid: number, code: ErrorCode, message: string): void;
  readonly isOpen: boolean;
  /** True while the connection's outbound queue is past its high-water mark. */
  readonly congested: boolean;
  /** Calls `w.unblock` once the outbound queue drained below its mark (or the connection went away). */
  addWaiter(w: Throttled): void;
  /** Counts `size` bytes kept for the connection (buffered live events) against its bound; false: they do not fit, do not keep them. */
  reserve(size: number): boolean;
  /** Gives back bytes taken with reserve(). */
  unreserve(size: number): void;
}

/** What a Sequencer uses of its node. */
export interface SequencerDeps {
  readonly store: HistoryStore;
  readonly logger: Logger;
  readonly stats: NodeStats;
  /** Frees the replay slot this subscription holds (called once, when its first replay ends or it is cancelled). */
  readonly release: () => void;
}

/** After a replay, look once more for events this node did not see live (interest still propagating). */
const RECHECK_MS = [300, 1500];

/**
 * Live events buffered while a replay reads history. Past this many, or past
 * the connection's bound in bytes (their bytes are reserved against its
 * maxPending, so they show in its `pending`), they are dropped: they are in
 * the history too, and a read after the replay (the recheck) delivers them
 * in order, so memory stays bounded during a long replay, however long a
 * reader that stopped keeps it waiting.
 */
const MAX_PENDING = 4096;

/**
 * A subscription with a position (SUB `since`): resumes a literal durable
 * topic from a position and then stays in offset order.
 *
 * The subscription is in the routing table before history is read, so live
 * events that arrive meanwhile are buffered. The first read returns the top
 * offset atomically with the first page of history; the replay then reads
 * page after page up to that offset, each page only once the connection's
 * outbound queue has drained (so neither Redis nor the node ever holds more
 * than a page for it); then the buffered events follow, those at or below the
 * last delivered offset dropped: no gap and no duplicate at the seam. Live
 * events stay in offset order: one whose offset jumps ahead (an event from
 * another node still on its way, or sent before this node's interest reached
 * the publisher's node) triggers a read of the missing range. Whenever the
 * history cannot fill a hole (other epoch, trimmed), the client gets an
 * explicit ACK with recovered=false and the position from which it
 * continues. A store that fails a read (down, past the store deadline) loses
 * nothing: the client gets ERROR MB_ERR_STORE_UNAVAILABLE on the sid, the
 * position stays (the one asked for, or the last delivered) and the next
 * live event, or the client's SUB again, reads from it (storeFailed). An
 * entry that cannot be decoded is skipped with an ERROR MB_ERR_STORE_CORRUPT
 * on the sid. Nothing here throws out of a promise.
 */
export class Sequencer implements SequencedReceiver {
  private epoch = '';
  private offset = 0;
  private fetching = true;
  /** The SUB's ACK was sent. Until then a failed first read leaves nothing delivered and `since` kept. */
  private started = false;
  /** The position the SUB asked for (epoch '' = from now), kept until the first read answers. */
  private since: Position = { epoch: '', offset: 0 };
  /**
   * The SUB's `ref`, echoed in every SubAck of this subscription (its answer, its gap notices): the client tells
   * them from the SubAcks of the subscription this one replaced (same sid) still on their way (SPEC 15.3).
   */
  private ref: number | undefined;
  private closed = false;
  private released = false;
  /** Buffered live events were dropped (MAX_PENDING): read them from history once live. */
  private overflowed = false;
  private pending: Frame[] = [];
  /** Bytes of `pending`, reserved against the connection's bound. */
  private pendingBytes = 0;
  private timers: Array<ReturnType<typeof setTimeout>> = [];

  constructor(
    private readonly owner: SequencedOwner,
    readonly sid: number,
    readonly topic: string,
    private readonly rule: ResolvedTopicRule,
    private readonly deps: SequencerDeps,
  ) {}

  get position(): Position {
    return { epoch: this.epoch, offset: this.offset };
  }

  /** Starts: replays history after `since` (epoch '' = from now), then goes live; `ref`: the SUB's, echoed in its SubAcks. */
  start(since: Position, ref = this.ref): void {
    this.since = since;
    this.ref = ref;
    this.fetching = true;
    this.read(since, 0, (r) => this.afterInitial(since, r));
  }

  cancel(): void {
    this.closed = true;
    this.dropPending();
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    this.releaseSlot();
  }

  offer(f: Frame): void {
    if (this.closed) return;
    if (this.fetching) {
      this.keep(f);
      return;
    }
    if (!this.started) {
      // The first read failed (storeFailed): this event retries it, the SUB's ACK still owed.
      this.keep(f);
      this.restart(f);
      return;
    }
    this.accept(f);
  }

  /**
   * Reads again from the position the SUB asked for, after its first read
   * failed. "From now" (epoch '') becomes just before `f`, the first live
   * event since: what the store accepted after the SUB is not skipped for
   * having waited for the store.
   */
  private restart(f: Frame): void {
    const pos = positionOf(f);
    this.start(this.since.epoch === '' && pos ? { epoch: pos.epoch, offset: pos.offset - 1 } : this.since);
  }

  /**
   * Buffers a live event until the history read in progress is delivered.
   * Its bytes count against the connection's bound, and a view of a larger
   * buffer (an event forwarded by a peer lies in the link's input chunk) is
   * copied first, so what is counted is what is kept. Past MAX_PENDING events
   * or the bound, everything buffered is dropped (`overflowed`: read from
   * history once live) — the event too if it still does not fit.
   */
  private keep(f: Frame): void {
    const size = f.end - f.start;
    if (this.pending.length >= MAX_PENDING || !this.owner.reserve(size)) {
      this.dropPending();
      this.overflowed = true;
      if (!this.owner.reserve(size)) return;
    }
    this.pending.push(owned(f));
    this.pendingBytes += size;
  }

  /** Empties the buffer and gives its bytes back. */
  private dropPending(): Frame[] {
    const was = this.pending;
    this.pending = [];
    if (this.pendingBytes > 0) this.owner.unreserve(this.pendingBytes);
    this.pendingBytes = 0;
    return was;
  }

  /** One page read; `ok` runs with it, a failure goes to storeFailed. Never leaves a rejection unhandled. */
  private read(from: Position, upto: number, ok: (r: ReadResult) => void): void {
    this.deps.stats.store.replayPages++;
    this.deps.store
      .read(this.topic, this.rule, from, upto)
      .then(
        (r) => {
          if (this.closed) return;
          if (r.metaCorrupt) this.corrupt(`stream metadata of "${this.topic}" was malformed: history reset`);
          ok(r);
        },
        (e: unknown) => this.storeFailed(e),
      )
      .catch((e: unknown) => {
        // A bug in the callbacks: keep the node up, and the subscription going live.
        throttled(this.deps.logger).error({ topic: this.topic, err: thrownText(e) }, 'history replay failed', 'history replay failed', errorSite(e));
        if (!this.closed && this.fetching) this.goLive();
      });
  }

  private afterInitial(since: Position, r: ReadResult): void {
    this.started = true;
    this.epoch = r.epoch;
    const recovered = r.recovered;
    const replaying = recovered && since.epoch !== '';
    this.subAck(recovered, r.epoch, replaying ? since.offset : r.top);
    const top = r.top;
    const finish = (): void => {
      this.offset = Math.max(this.offset, top);
      this.goLive();
      for (const ms of RECHECK_MS) {
        const t = setTimeout(() => this.recheck(), ms);
        t.unref?.();
        this.timers.push(t);
      }
    };
    if (!replaying) {
      finish();
      return;
    }
    this.offset = since.offset;
    this.replayPages(r, top, finish);
  }

  /**
   * Delivers page `r` (from its event `at`) while the connection is below its
   * mark, the rest of it once it has drained; then reads and delivers the next
   * pages up to offset `target` the same way; then `done`. A page never goes
   * into the queue at once: with a maxPending below a page and the mark
   * (replay.pageBytes, ~1 MiB) that closed a subscriber that reads as a slow
   * consumer. `before`: the offset when the page started.
   */
  private replayPages(r: ReadResult, target: number, done: () => void, at = 0, before = this.offset): void {
    if (this.closed) return;
    const stopped = this.deliverPage(r, target, at);
    if (this.closed) return;
    if (stopped < r.events.length) {
      this.whenDrained(() => this.replayPages(r, target, done, stopped, before));
      return;
    }
    if (this.offset >= target || this.offset === before) {
      // Finished, or the history no longer has what follows (trimmed meanwhile): say so and continue.
      if (this.offset < target) this.lost(this.epoch, target);
      done();
      return;
    }
    this.whenDrained(() => {
      const from = this.position;
      this.read(from, target, (next) => {
        if (next.epoch !== from.epoch || !next.recovered) {
          this.lost(next.epoch, target);
          done();
          return;
        }
        this.replayPages(next, target, done);
      });
    });
  }

  /** Runs `fn` now, or once the connection's outbound queue has drained below its mark. */
  private whenDrained(fn: () => void): void {
    const run = (): void => {
      if (!this.closed) fn();
    };
    if (!this.owner.congested || !this.owner.isOpen) {
      run();
      return;
    }
    this.owner.addWaiter({ unblock: run });
  }

  /** Delivers the events of `r` from index `at` up to `target`; returns where it stopped: the connection got congested, or the page's end. */
  private deliverPage(r: ReadResult, target: number, at: number): number {
    const events = r.events;
    for (let i = at; i < events.length; i++) {
      const e = events[i]!;
      if (!this.owner.isOpen) return events.length;
      if (i > at && this.owner.congested) return i;
      if (e.offset <= this.offset) continue;
      if (e.offset > target) break;
      if (e.offset !== this.offset + 1) {
        // Entries missing inside the stream (deleted by hand): an explicit hole.
        this.lost(this.epoch, e.offset - 1);
      }
      this.offset = e.offset;
      if (e.corrupt !== undefined) {
        this.corrupt(`offset ${e.offset} of "${this.topic}" skipped: ${e.corrupt}`);
        continue;
      }
      let f: Frame;
      try {
        f = withPosition(e.frame, { epoch: this.epoch, offset: e.offset });
      } catch (err) {
        this.corrupt(`offset ${e.offset} of "${this.topic}" skipped: ${(err as Error).message}`);
        continue;
      }
      this.owner.deliver(f, this.sid);
    }
    return events.length;
  }

  /** Tells the client it may have missed events: it continues after (epoch, offset). */
  private lost(epoch: string, offset: number): void {
    this.subAck(false, epoch, offset);
    this.epoch = epoch;
    this.offset = offset;
  }

  /** A SubAck of this subscription, with the SUB's `ref` when it had one. */
  private subAck(recovered: boolean, epoch: string, offset: number): void {
    const body: SubAckBody = { recovered, epoch, offset };
    if (this.ref !== undefined) body.ref = this.ref;
    this.owner.sendSubAck(this.sid, body);
  }

  private corrupt(message: string): void {
    this.deps.stats.store.corrupt++;
    throttled(this.deps.logger).warn({ topic: this.topic, sid: this.sid }, message, 'history corrupt');
    this.owner.notice(this.sid, 'MB_ERR_STORE_CORRUPT', message);
  }

  private releaseSlot(): void {
    if (this.released) return;
    this.released = true;
    this.deps.release();
  }

  private goLive(): void {
    this.releaseSlot();
    this.fetching = false;
    if (this.overflowed) {
      this.overflowed = false;
      const t = setTimeout(() => this.recheck(), 0);
      t.unref?.();
      this.timers.push(t);
    }
    const pending = this.dropPending();
    for (let i = 0; i < pending.length; i++) {
      if (this.fetching) {
        // A hole: the rest waits for the fill.
        for (let j = i; j < pending.length; j++) this.keep(pending[j]!);
        return;
      }
      this.accept(pending[i]!);
    }
  }

  private accept(f: Frame): void {
    if (!this.owner.isOpen) return;
    // Only node-stamped positions reach here: clients cannot set one (refused at ingress, SPEC §15.1).
    const pos = positionOf(f);
    if (!pos) {
      this.owner.deliver(f, this.sid);
      return;
    }
    if (pos.epoch !== this.epoch) {
      this.keep(f);
      this.checkEpoch(f, pos);
      return;
    }
    if (pos.offset <= this.offset) return;
    if (pos.offset === this.offset + 1) {
      this.offset = pos.offset;
      this.owner.deliver(f, this.sid);
      return;
    }
    this.keep(f);
    this.fill(pos.offset - 1, f);
  }

  /**
   * A live event from another epoch: the history was lost (or reset) while
   * we were live — or the event is bogus (a peer may be buggy or
   * compromised). The store decides: its epoch is the truth.
   */
  private checkEpoch(f: Frame, pos: Position): void {
    this.fetching = true;
    const from = this.position;
    this.read(from, 0, (r) => {
      if (r.epoch === pos.epoch && r.recovered) {
        // Nothing lost: the store continues the reader's position with this epoch from its start (a topic with no
        // history yet, first written by another node: history-store READ). Read what precedes the event, if anything.
        this.epoch = r.epoch;
        this.offset = 0;
        if (pos.offset > 1) return this.fill(pos.offset - 1, f);
      } else if (r.epoch === pos.epoch) {
        // Really reset: say so, then continue from the new epoch (the event follows from pending).
        this.lost(pos.epoch, pos.offset - 1);
      } else {
        this.bogus(f, `epoch ${pos.epoch} is not the store's (${r.epoch})`);
        if (r.epoch !== from.epoch) this.lost(r.epoch, r.top);
      }
      this.goLive();
    });
  }

  /** Drops a buffered live event whose position the store contradicts: it never reaches the client nor moves its position. */
  private bogus(f: Frame, why: string): void {
    // Buffered as a copy when it was a view: compare by position, the store's only judge.
    const at = positionOf(f);
    const kept = this.dropPending();
    for (const x of kept) {
      const p = positionOf(x);
      if (!(at && p && p.epoch === at.epoch && p.offset === at.offset)) this.keep(x);
    }
    throttled(this.deps.logger).warn({ topic: this.topic, sid: this.sid }, `event with an impossible position dropped: ${why}`, 'impossible position');
  }

  /** Reads (offset, upto] from history in pages, delivers it, then the buffered events; `trigger` is the live event that jumped ahead. */
  private fill(upto: number, trigger: Frame): void {
    this.fetching = true;
    const from = this.position;
    this.read(from, upto, (r) => {
      if (r.epoch !== from.epoch) {
        this.lost(r.epoch, upto);
        this.goLive();
        return;
      }
      let target = upto;
      if (upto + 1 > r.top) {
        // A node delivers an event only after the store has it, so an offset above the
        // store's top is impossible: the event is bogus (a buggy or compromised peer).
        this.bogus(trigger, `offset ${upto + 1} is above the store's last offset ${r.top}`);
        target = Math.max(this.offset, r.top);
      }
      if (!r.recovered) {
        this.lost(r.epoch, target);
        this.goLive();
        return;
      }
      this.replayPages(r, target, () => this.goLive());
    });
  }

  /** Catches events this node never saw live (e.g. published before the publisher's node learned our interest). */
  private recheck(): void {
    if (this.closed || this.fetching || !this.owner.isOpen) return;
    this.fetching = true;
    const from = this.position;
    this.read(from, 0, (r) => {
      if (r.epoch === from.epoch && r.recovered && r.top > this.offset) this.replayPages(r, r.top, () => this.goLive());
      else this.goLive();
    });
  }

  /**
   * A read failed (store down, no answer within the store deadline): not a
   * loss, the history may still hold every event (SPEC 15.3). The client gets
   * ERROR MB_ERR_STORE_UNAVAILABLE on the sid, never an ACK recovered=false;
   * the position stays where it was (the SUB's `since` before the first
   * answer). Buffered live events are dropped (a node delivers only what the
   * store has: they are read from history later). The subscription stays:
   * the next live event reads from the position again (restart, or accept's
   * fill of the hole), and a client that resubscribes (same sid) replaces it.
   */
  private storeFailed(e: unknown): void {
    if (this.closed) return;
    throttled(this.deps.logger).warn({ topic: this.topic, ...storeErr(e) }, 'history read failed', undefined, storeFailure(e));
    const at = this.started ? this.position : this.since;
    const kept = `position [${JSON.stringify(at.epoch)}, ${at.offset}] kept; subscribe again to retry`;
    if (isMeshbusError(e) && e.code === 'MB_ERR_STORE_CORRUPT') this.corrupt(`${e.message}; ${kept}`);
    else this.owner.notice(this.sid, 'MB_ERR_STORE_UNAVAILABLE', `history of "${this.topic}" not read: ${storeFailure(e)}; ${kept}`);
    this.dropPending();
    this.overflowed = false;
    this.releaseSlot();
    this.fetching = false;
  }
}

/**
 * `f` itself when its buffer holds little else (a durable event is a copy of
 * its own), else a copy: a small view must not keep a large input chunk alive
 * while it waits in a buffer.
 */
function owned(f: Frame): Frame {
  const size = f.end - f.start;
  if (f.buf.buffer.byteLength <= 2 * size) return f;
  return new Frame(copyBytes(f.buf, f.start, f.end), 0, size);
}

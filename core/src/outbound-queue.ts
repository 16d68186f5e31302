import { copyBytes, readU32 } from '@meshbus/proto';
import type { BudgetMember, OutboundBudget } from './outbound-budget.js';
import { Backlog } from './outbound-backlog.js';
import { OutboundReserve } from './outbound-reserve.js';
import { sharedCopy } from './shared-copy.js';
import type { Transport } from './transport.js';
import type { DropTag, SlowPolicy } from './subscriber.js';

export type { DropTag } from './subscriber.js';

/** The tag of an untagged event on a 'drop' queue. */
const NO_SIDS: DropTag = [];
/** The tag of a queued control frame (ERROR, ACK, PONG…, sendControl/sendNotice): firm, and no event. */
const CONTROL: DropTag = [];
/**
 * What a queue tells its connection (the connection itself: no closures per connection, issue #15): `overflow`, a firm
 * frame did not fit (a slow consumer); `eventDropped`, one event lost (dropped, refused or discarded at the close), once.
 */
export interface QueueOwner {
  overflow(): void;
  eventDropped?(tag: DropTag): void;
}

/**
 * Everything a session sends, with one bound. Frames go straight to the
 * wire while it keeps up; past `highWater` bytes buffered in the wire they
 * wait in a backlog of copies (so a slow reader pins no input chunks; the
 * wire copies what it must hold too, see TcpTransport). A backlog entry is
 * its own copy of what is this receiver's (a rewritten header) and one copy
 * of the rest shared by every queue holding the same event (shared-copy.ts):
 * an event fanned out to N slow receivers is held once. Every byte queued for the
 * connection — events and control frames alike (ERROR, ACK, PONG, WELCOME,
 * GOODBYE) — counts against `maxPending`, whatever the events' policy.
 *
 * Each queued event is *droppable* (sent with a DropTag: it was for 'drop'
 * subscriptions only; or any event when the queue's `policy` is 'drop') or
 * *firm* (a 'disconnect' subscription wants it). Past the bound:
 * - room is made first by dropping the oldest queued droppable events
 *   (reported to `eventDropped` with their tags), never a firm event or a control frame;
 * - a droppable event that still does not fit is dropped itself (reported);
 * - a firm event or control frame that still does not fit makes the
 *   connection a slow consumer (`overflow`).
 * So 'drop' subscriptions never make a connection slow and never hold more
 * than the bound, and a 'disconnect' one is slow only when firm bytes and
 * what the wire holds fill the bound.
 * Reporting a slow consumer sends one last frame (`sendFinal`) and the queue
 * refuses everything afterwards, so closing costs at most that frame.
 *
 * Node-wide (outbound-budget.ts, SPEC 10.6): the queue counts its backlog
 * and its wire bytes in the node's outbound budget. A frame that would pass
 * it makes the queues holding the most shed by their policy (droppable
 * events dropped, else a slow consumer); when this queue holds the most, the
 * rules above apply to it with the node's room as its bound.
 */
export class OutboundQueue implements BudgetMember {
  /** What waits for the wire (outbound-backlog.ts; tags: a DropTag when droppable, undefined for a firm event, CONTROL for a control frame); none while nothing waits. */
  private backlog: Backlog | undefined;
  private backlogBytes = 0;
  /** Bytes of firm entries (control frames, firm events) in the backlog: not freed by dropping. */
  private firmBytes = 0;
  /** Set by sendFinal: nothing more is queued. */
  private sealed = false;
  /** Bytes kept for the connection outside the queue (reserve/unreserve), in its bound and the node's budget; made at the first reserve (idle connections carry none). */
  private kept: OutboundReserve | undefined;
  /** Time the wire last made progress (or had nothing to send). */
  lastProgress = Date.now();
  /** Something other than an event for 'drop' subscriptions was handed out since the queue was last empty: only then does the write deadline apply. */
  private firmWaiting = false;
  /** Bytes counted in the node's budget: the backlog and the wire's bytes (as of the last drain, plus what went to it since). */
  charged = 0;
  /** Set while the budget makes this queue shed: a last frame then goes alone (what waits is discarded). */
  private shedding = false;
  /** Events lost, each once: dropped (refused, or to make room), or discarded by sendFinal or discard(); each also reported to `eventDropped`. Control frames are no events. */
  dropped = 0;

  /** `policy`: what an event sent without a DropTag is ('drop': droppable, 'disconnect': firm). */
  constructor(
    private readonly transport: Transport,
    private readonly highWater: number,
    private readonly maxPending: number,
    public policy: SlowPolicy,
    private readonly owner: QueueOwner,
    /** The node-wide outbound budget this queue joins (SPEC 10.6). */
    private budget?: OutboundBudget,
  ) {}

  /** BudgetMember: not closing (a queue sealed by its last frame takes nothing more and counts nothing). */
  get sheddable(): boolean {
    return !this.sealed;
  }

  /**
   * Counts `n` more bytes (or fewer) held here and in the node's budget, a member while it holds any (backlog or
   * wire: a reader that does not read holds its wire's bytes).
   */
  private charge(n: number): void {
    const was = this.charged;
    this.charged += n;
    const b = this.budget;
    if (b === undefined) return;
    b.used += n;
    if (was === 0) {
      if (this.charged !== 0) b.join(this);
    } else if (this.charged === 0) b.leave(this);
  }

  /** Recounts what is held: the backlog and what the wire has not taken. */
  private recharge(): void {
    this.charge(this.backlogBytes + this.transport.buffered - this.charged);
  }

  /**
   * BudgetMember: the node's outbound budget is past its bound and this
   * queue holds the most: its droppable events are dropped (each lost once,
   * reported); when none were, the consumer is slow (`overflow`: its last
   * frame goes alone, what waits is discarded).
   */
  shed(): void {
    const before = this.backlogBytes;
    if (before > this.firmBytes) this.dropOldestEvents(Infinity);
    if (this.backlogBytes === before) {
      this.shedding = true;
      this.owner.overflow();
      this.shedding = false;
      if (!this.sealed) {
        // An owner that did not close: what waits is lost all the same, the bound kept.
        this.loseWaiting();
        this.clear();
      }
      // Closing: its wire's bytes go with the connection (closeTimeout), not the budget's (else all would be shed).
      this.charge(-this.charged);
      this.budget = undefined;
      this.kept?.drop();
    }
  }

  /** At least `highWater` bytes unsent: publishers feeding this queue should wait. */
  get congested(): boolean {
    return this.backlogBytes > 0 || this.transport.buffered >= this.highWater;
  }

  get pending(): number {
    return this.backlogBytes + this.transport.buffered;
  }

  /** Bytes kept for this connection outside the queue (reserve): events buffered on its behalf. */
  get held(): number {
    return this.kept?.bytes ?? 0;
  }

  /**
   * Counts `size` bytes the node keeps for this connection outside the queue
   * (a replay's buffered live events, outbound-reserve.ts) against its bound
   * and the node's budget: false, nothing reserved, when what is queued, what
   * the wire holds, what is reserved and `size` pass maxPending, or `size`
   * the budget, or once sealed. Given back with unreserve(). Shown in `held`,
   * not `pending` (which decides the write deadline); never made room for by
   * dropping events: a holder past the bound drops its own (it can read them again).
   */
  reserve(size: number): boolean {
    return !this.sealed && (this.kept ??= new OutboundReserve(this.budget)).take(size, this.backlogBytes + this.transport.buffered, this.maxPending);
  }

  /** Gives back bytes taken with reserve(). */
  unreserve(size: number): void {
    this.kept?.give(size);
  }

  /**
   * Queues an event — `chunk`, or `chunk` then `tail` as one frame (a
   * rewritten header and the rest as received): kept or dropped together, so
   * a drop never leaves half a frame. `drop`: the event is droppable, for
   * these sids (see DropTag). False when dropped or the consumer is slow.
   */
  send(chunk: Uint8Array, tail?: Uint8Array, drop?: DropTag): boolean {
    if (this.sealed) return this.lose(drop ?? NO_SIDS);
    const size = tail === undefined ? chunk.length : chunk.length + tail.length;
    if (drop === undefined) this.firmWaiting = true;
    if (this.direct(chunk, tail, size, 1)) return true;
    return this.hold(chunk, tail, size, drop);
  }

  /**
   * `send(buf.subarray(start, end), undefined, drop)` without making the view
   * while the frame goes straight to the wire (the transport's writeRange):
   * how a node delivers an event as the bytes it arrived in.
   */
  sendRange(buf: Uint8Array, start: number, end: number, drop?: DropTag): boolean {
    if (this.sealed) return this.lose(drop ?? NO_SIDS);
    const size = end - start;
    if (drop === undefined) this.firmWaiting = true;
    if (this.wireTakes(size)) {
      this.writeRange(buf, start, end);
      return true;
    }
    return this.hold(buf, undefined, size, drop, start);
  }

  /** Hands `buf[start, end)`, `events` events (one, or a run's), to the wire, without a view when the transport takes ranges. */
  private writeRange(buf: Uint8Array, start: number, end: number, events = 1): void {
    const t = this.transport;
    if (t.writeRange !== undefined) t.writeRange(buf, start, end);
    else t.write(buf.subarray(start, end));
    t.countEvents?.(events);
    this.charge(end - start);
  }

  /**
   * A run (publish-run.ts): events back to back in `buf` from `start` to
   * `end`, each a whole frame, none droppable on its own. While the wire
   * takes them they go as one range; otherwise each is queued, dropped or
   * found too much for the bound on its own, as one `sendRange` per event
   * would be (backlog entries, drops and their counts are per event; a
   * receiver gets the events that fit). Returns how many events were taken;
   * `runBytes` their bytes.
   */
  sendRun(buf: Uint8Array, start: number, end: number, count: number): number {
    if (this.sealed) {
      for (let i = 0; i < count; i++) this.lose(NO_SIDS);
      return (this.runBytes = 0);
    }
    if (this.wireTakes(end - start)) {
      this.firmWaiting = true;
      this.writeRange(buf, start, end, count);
      this.runBytes = end - start;
      return count;
    }
    let taken = 0;
    let bytes = 0;
    for (let at = start; at < end; ) {
      const next = at + 4 + readU32(buf, at); // the frame's length prefix: the bytes after it
      if (this.sendRange(buf, at, next)) {
        taken++;
        bytes += next - at;
      }
      at = next;
    }
    this.runBytes = bytes;
    return taken;
  }

  /** Bytes of the events the last sendRun took. */
  runBytes = 0;

  /**
   * The frame could not go to the wire now: queue it within the bound, or
   * drop it, or report a slow consumer. With `start`, the frame is
   * `chunk[start, start + size)` (a range, sendRange).
   */
  private hold(chunk: Uint8Array, tail: Uint8Array | undefined, size: number, drop: DropTag | undefined, start?: number): boolean {
    const tag = drop ?? (this.policy === 'drop' ? NO_SIDS : undefined);
    if (!this.fits(size)) {
      // A firm event that does not fit closes the connection as a slow consumer: lost with it, counted as any other.
      if (tag === undefined) this.owner.overflow();
      return this.lose(tag ?? NO_SIDS);
    }
    // Held by every receiver that is behind: the bytes the receivers share are copied once (shared-copy.ts).
    if (start !== undefined) this.push(sharedCopy(chunk, start, start + size), undefined, size, tag);
    else if (tail === undefined) this.push(copyBytes(chunk), undefined, size, tag);
    else this.push(copyBytes(chunk), sharedCopy(tail, 0, tail.length), size, tag);
    return true;
  }

  /** Queues a control frame (ERROR, ACK, PONG…) in order with the events; never dropped: past the bound, droppable events make room, else the consumer is slow (false). */
  sendControl(chunk: Uint8Array): boolean {
    if (this.sealed) return false;
    this.firmWaiting = true;
    if (this.direct(chunk, undefined, chunk.length, 0)) return true;
    if (!this.fits(chunk.length)) {
      this.owner.overflow();
      return false;
    }
    this.enqueue(chunk, CONTROL);
    return true;
  }

  /** A notice the node may skip (a drop report): queued when it fits the bound, else not (false); never makes a connection slow. */
  sendNotice(chunk: Uint8Array): boolean {
    if (this.sealed) return false;
    if (this.direct(chunk, undefined, chunk.length, 0)) return true;
    if (!this.fits(chunk.length)) return false;
    this.enqueue(chunk, CONTROL);
    return true;
  }

  /**
   * The last frame before closing (fatal ERROR, GOODBYE). Goes behind what
   * waits when that fits the bound (and the budget did not make this queue
   * shed); otherwise what waits is discarded and the frame goes alone.
   * Afterwards the queue takes nothing more. What waits goes to the wire as
   * it drains (the connection ends its transport once it has: afterBacklog);
   * what the close deadline cuts off is counted lost once (discard).
   */
  sendFinal(chunk: Uint8Array): void {
    if (this.sealed) return;
    this.sealed = true;
    if (this.shedding || this.transport.writable === false || this.backlogBytes + this.transport.buffered + chunk.length > this.maxPending) {
      this.loseWaiting();
      this.clear();
    }
    if (this.backlogBytes === 0) {
      this.transport.write(chunk);
      return this.charge(chunk.length);
    }
    this.enqueue(chunk, CONTROL);
    this.flushBacklog();
  }

  /** Calls `then` once nothing waits in the backlog of a queue sealed by sendFinal (at once when nothing does, or it was not sealed). */
  afterBacklog(then: () => void): void {
    if (!this.sealed || this.backlogBytes === 0) then();
    else this.whenFlushed = then;
  }
  private whenFlushed: (() => void) | undefined;

  /**
   * The connection is gone (its transport closed): each event still queued
   * is lost, counted once and reported to `eventDropped` (a firm one with no
   * sids). Nothing is queued after; the queue leaves the node's budget.
   */
  discard(): void {
    this.sealed = true;
    this.whenFlushed = undefined;
    this.loseWaiting();
    this.clear();
    this.charge(-this.charged);
    this.kept?.drop();
    // Handed to the wire but never taken whole by the system (the transport's count): lost too.
    for (let n = this.transport.unsentEvents ?? 0; n > 0; n--) this.lose(NO_SIDS);
  }

  private clear(): void {
    this.charge(-this.backlogBytes);
    this.backlog = undefined;
    this.backlogBytes = 0;
    this.firmBytes = 0;
  }

  /** The wire drained: move backlog into it. */
  onDrain(): void {
    this.lastProgress = Date.now();
    this.flushBacklog();
    this.recharge();
    if (this.pending === 0) this.firmWaiting = false;
  }

  /** Data waited longer than `deadline` ms without the wire taking any (unless only events for 'drop' subscriptions were handed out). */
  stalled(now: number, deadline: number): boolean {
    return this.firmWaiting && this.pending > 0 && now - this.lastProgress > deadline;
  }

  /**
   * Whether `size` more bytes fit the bound and the node's budget (where
   * the queues holding more shed first), after dropping the oldest
   * droppable events to make room.
   */
  private fits(size: number): boolean {
    if (!this.over(size)) return true;
    if (this.backlogBytes > this.firmBytes) this.dropOldestEvents(size);
    return !this.over(size);
  }

  /** `size` more bytes would pass maxPending, or the node's budget with no queue holding more to shed. */
  private over(size: number): boolean {
    if (this.backlogBytes + this.transport.buffered + size > this.maxPending) return true;
    const b = this.budget;
    return b !== undefined && b.used + size > b.limit && !b.makeRoom(this, size);
  }

  /** Loses the events still in the backlog, each once: not entries dropped already, nor control frames (sendFinal, discard). */
  private loseWaiting(): void {
    const q = this.backlog;
    if (q === undefined) return;
    for (let i = q.head; i < q.heads.length; i++) {
      const tag = q.tags[i];
      if (q.heads[i]!.length !== 0 && tag !== CONTROL) this.lose(tag ?? NO_SIDS);
    }
  }

  /** One event is gone (dropped, refused, or discarded at the close): counted once, reported to eventDropped. False (what send() returns for it). */
  private lose(tag: DropTag): false {
    this.dropped++;
    this.owner.eventDropped?.(tag);
    return false;
  }

  /** Hands the frame to the wire when nothing waits and the wire is below the mark. */
  private direct(chunk: Uint8Array, tail: Uint8Array | undefined, size: number, events: number): boolean {
    if (!this.wireTakes(size)) return false;
    // One call for both parts: a WebSocket message is cut between frames, never inside one.
    this.transport.write(chunk, tail);
    if (events !== 0) this.transport.countEvents?.(events);
    this.charge(size);
    return true;
  }

  /** Nothing waits and the wire is below the mark: a frame of `size` bytes may go to it now. */
  private wireTakes(size: number): boolean {
    if (this.backlogBytes !== 0) return false;
    const buffered = this.transport.buffered;
    if (buffered === 0) this.lastProgress = Date.now();
    // An empty wire takes any frame, even one larger than the mark: nothing would ever drain it otherwise.
    if (buffered === 0) return true;
    // Past the node's budget a frame waits (hold: the queues holding the most shed) instead of growing a wire.
    const b = this.budget;
    return buffered + size <= this.highWater && (b === undefined || b.used + size <= b.limit);
  }

  /** A control frame's own copy: backlog entries pin no input chunk. */
  private enqueue(chunk: Uint8Array, tag: DropTag | undefined): void {
    this.push(copyBytes(chunk), undefined, chunk.length, tag);
  }

  /** Adds a backlog entry: `head` (and `tail`: the rest of the frame), copies already, `size` bytes in all. */
  private push(head: Uint8Array, tail: Uint8Array | undefined, size: number, tag: DropTag | undefined): void {
    (this.backlog ??= new Backlog()).push(head, tail, tag);
    this.backlogBytes += size;
    this.charge(size);
    if (tag === undefined || tag === CONTROL) this.firmBytes += size;
  }

  /**
   * Frees room for `size` more bytes by dropping the oldest queued droppable
   * events, skipping firm ones and control frames. Amortised O(1): the scan
   * resumes where the last one stopped.
   */
  private dropOldestEvents(size: number): void {
    const q = this.backlog;
    if (q === undefined) return;
    let i = Math.max(q.dropFrom, q.head);
    while (this.backlogBytes > this.firmBytes && i < q.heads.length && this.pastBounds(size)) {
      const tag = q.tags[i];
      if (q.heads[i]!.length !== 0 && tag !== undefined && tag !== CONTROL) {
        const freed = q.clearAt(i);
        this.backlogBytes -= freed;
        this.charge(-freed);
        this.lose(tag);
      }
      i++;
    }
    q.dropFrom = i;
    q.skipEmptied();
    // A reader that never reads never drains: what was dropped gives its room back here too.
    q.compact();
  }

  /** `size` more bytes would pass maxPending or the node's budget (dropping this queue's own events makes room for either). */
  private pastBounds(size: number): boolean {
    const b = this.budget;
    return this.backlogBytes + this.transport.buffered + size > this.maxPending || (b !== undefined && b.used + size > b.limit);
  }

  private flushBacklog(): void {
    // A write that failed (a reset socket) reports progress too: what waits stays, lost and counted at the close (discard).
    if (this.transport.writable === false) return;
    const q = this.backlog;
    // A write may close the connection (clear(): the backlog let go): nothing more is taken from it then.
    while (q !== undefined && this.backlog === q && q.head < q.heads.length && this.transport.buffered < this.highWater) {
      const i = q.head++;
      const c = q.heads[i]!;
      const tail = q.tails[i];
      const tag = q.tags[i];
      const firm = tag === undefined || tag === CONTROL;
      if (c.length === 0) continue;
      const size = q.clearAt(i);
      this.backlogBytes -= size;
      if (firm) this.firmBytes -= size;
      // From the backlog to the wire: still held, still counted (the drain recounts).
      this.transport.write(c, tail);
      if (tag !== CONTROL) this.transport.countEvents?.(1);
    }
    if (this.backlogBytes === 0 && this.whenFlushed !== undefined) {
      const then = this.whenFlushed;
      this.whenFlushed = undefined;
      then();
    }
    // `then` may have cleared the queue (a close): only this backlog is let go or compacted.
    if (q === undefined || this.backlog !== q) return;
    if (q.empty) this.backlog = undefined;
    else q.compact();
  }
}

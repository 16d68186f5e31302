import { Frame, type Position } from '@meshbus/proto';
import type { Logger } from '../logger.js';
import type { SequencedReceiver } from '../subscriber.js';
import { positionOf, withPosition } from './frames.js';
import type { HistoryStore, ReadResult } from './history-store.js';
import type { ResolvedTopicRule } from './store-config.js';

/** What a sequenced subscription needs from its connection. */
export interface SequencedOwner {
  /** Sends one event to subscription `sid` (a sid-addressed delivery). */
  deliver(f: Frame, sid: number): void;
  /** Sends the SUB's ACK: {recovered, epoch, offset} with correlation = sid. */
  sendSubAck(sid: number, body: { recovered: boolean; epoch: string; offset: number }): void;
  readonly isOpen: boolean;
}

/** After a replay, look once more for events this node did not see live (interest still propagating). */
const RECHECK_MS = [300, 1500];

/**
 * A subscription with a position (SUB `since`): resumes a literal durable
 * topic from a position and then stays in offset order.
 *
 * The subscription is in the routing table before history is read, so live
 * events that arrive meanwhile are buffered. The read returns the history and
 * the top offset atomically; then the buffered events follow, those at or
 * below the last delivered offset dropped: no gap and no duplicate at the
 * seam. Live events stay in offset order: one whose offset jumps ahead (an
 * event from another node still on its way, or sent before this node's
 * interest reached the publisher's node) triggers a read of the missing
 * range. Whenever the history cannot fill a hole (other epoch, trimmed,
 * store down), the client gets an explicit ACK with recovered=false and the
 * position from which it continues.
 */
export class Sequencer implements SequencedReceiver {
  private epoch = '';
  private offset = 0;
  private fetching = true;
  private closed = false;
  private pending: Frame[] = [];
  private timers: Array<ReturnType<typeof setTimeout>> = [];

  constructor(
    private readonly owner: SequencedOwner,
    readonly sid: number,
    readonly topic: string,
    private readonly rule: ResolvedTopicRule,
    private readonly store: HistoryStore,
    private readonly logger: Logger,
  ) {}

  get position(): Position {
    return { epoch: this.epoch, offset: this.offset };
  }

  /** Starts: replays history after `since` (epoch '' = from now), then goes live. */
  start(since: Position): void {
    this.fetching = true;
    this.store.read(this.topic, this.rule, since).then(
      (r) => this.afterInitial(since, r),
      (e: unknown) => this.storeFailed(e, true),
    );
  }

  cancel(): void {
    this.closed = true;
    this.pending = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  offer(f: Frame): void {
    if (this.closed) return;
    if (this.fetching) {
      this.pending.push(f);
      return;
    }
    this.accept(f);
  }

  private afterInitial(since: Position, r: ReadResult): void {
    if (this.closed) return;
    this.epoch = r.epoch;
    const recovered = r.recovered;
    this.owner.sendSubAck(this.sid, { recovered, epoch: r.epoch, offset: recovered && since.epoch !== '' ? since.offset : r.top });
    if (recovered && since.epoch !== '') {
      this.offset = since.offset;
      this.replay(r);
    }
    this.offset = Math.max(this.offset, r.top);
    this.goLive();
    for (const ms of RECHECK_MS) {
      const t = setTimeout(() => this.recheck(), ms);
      t.unref?.();
      this.timers.push(t);
    }
  }

  private replay(r: ReadResult): void {
    for (const e of r.events) {
      if (e.offset <= this.offset) continue;
      if (e.offset !== this.offset + 1) break;
      this.offset = e.offset;
      this.owner.deliver(withPosition(e.frame, { epoch: this.epoch, offset: e.offset }), this.sid);
    }
  }

  private goLive(): void {
    this.fetching = false;
    const pending = this.pending;
    this.pending = [];
    for (let i = 0; i < pending.length; i++) {
      if (this.fetching) {
        // A hole: the rest waits for the fill.
        this.pending.push(...pending.slice(i));
        return;
      }
      this.accept(pending[i]!);
    }
  }

  private accept(f: Frame): void {
    if (!this.owner.isOpen) return;
    const pos = positionOf(f);
    if (!pos) {
      this.owner.deliver(f, this.sid);
      return;
    }
    if (pos.epoch !== this.epoch) {
      // History was lost (or reset) while we were live: say so, then continue from the new epoch.
      this.owner.sendSubAck(this.sid, { recovered: false, epoch: pos.epoch, offset: pos.offset - 1 });
      this.epoch = pos.epoch;
      this.offset = pos.offset - 1;
    }
    if (pos.offset <= this.offset) return;
    if (pos.offset === this.offset + 1) {
      this.offset = pos.offset;
      this.owner.deliver(f, this.sid);
      return;
    }
    this.pending.push(f);
    this.fill(pos.offset - 1);
  }

  /** Reads (offset, upto] from history, delivers it, then the buffered events. */
  private fill(upto: number): void {
    this.fetching = true;
    const from = this.position;
    this.store.read(this.topic, this.rule, from, upto).then(
      (r) => {
        if (this.closed) return;
        if (r.epoch !== from.epoch || !r.recovered) {
          this.owner.sendSubAck(this.sid, { recovered: false, epoch: r.epoch, offset: upto });
          this.epoch = r.epoch;
          this.offset = upto;
        } else {
          this.replay(r);
          if (this.offset < upto) {
            this.owner.sendSubAck(this.sid, { recovered: false, epoch: r.epoch, offset: upto });
            this.offset = upto;
          }
        }
        this.goLive();
      },
      (e: unknown) => this.storeFailed(e, false),
    );
  }

  /** Catches events this node never saw live (e.g. published before the publisher's node learned our interest). */
  private recheck(): void {
    if (this.closed || this.fetching || !this.owner.isOpen) return;
    this.fetching = true;
    const from = this.position;
    this.store.read(this.topic, this.rule, from).then(
      (r) => {
        if (this.closed) return;
        if (r.epoch === from.epoch && r.recovered) this.replay(r);
        this.goLive();
      },
      () => this.goLive(),
    );
  }

  private storeFailed(e: unknown, initial: boolean): void {
    if (this.closed) return;
    this.logger.warn({ topic: this.topic, err: String(e) }, 'history read failed');
    // Continue live; the client is told it may have missed events.
    const next = this.pending[0] ? positionOf(this.pending[0]) : undefined;
    const epoch = next?.epoch ?? this.epoch;
    const offset = next ? next.offset - 1 : this.offset;
    this.owner.sendSubAck(this.sid, { recovered: false, epoch, offset });
    this.epoch = epoch;
    this.offset = offset;
    void initial;
    this.goLive();
  }
}

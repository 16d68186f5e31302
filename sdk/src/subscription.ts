import type { MeshbusError, Position } from '@meshbus/proto';
import type { Codec } from './codecs.js';
import type { Msg } from './msg.js';
import { invalid } from './errors.js';
import { QueuedIterator } from './queued-iterator.js';

export interface SubscribeOptions {
  /** Queue group: each event goes to one member of the group across all its clients. */
  queue?: string;
  /** Node-side slow-consumer policy for this subscription: 'disconnect' (node default) or 'drop'. */
  slow?: 'drop' | 'disconnect';
  /**
   * Called for each event instead of queueing it for the async iterator. Exceptions (and a returned promise's rejection) are reported as status errors.
   * On a durable queue subscription, returning (or a returned promise resolving) ACKs the job; a throw or rejection NACKs it.
   */
  callback?: (msg: Msg) => unknown;
  /**
   * Resume a durable topic (literal, configured with history on the node) after this
   * position: missed events first, in order, then live ones. Implies `recover`.
   */
  since?: Position;
  /**
   * Track the position of a durable topic and resume from it after every reconnect
   * (any node of the mesh). `sub.recovered` / status 'recovery' tell whether nothing was missed.
   */
  recover?: boolean;
  /** With `queue`: a durable work queue; each event is a job ACKed by a successful handler. */
  durable?: boolean;
  /** false: do not receive the latest value of matching `latest` topics on subscribing. */
  latest?: boolean;
  /**
   * Unsubscribe automatically after this many events (a positive integer).
   * The node is told (SUB `max`) and stops routing to this subscription once
   * it has delivered that many, so a queue group sends the rest to its other
   * members; after a reconnect the SUB carries what is left.
   */
  max?: number;
  /** Codec used by `msg.decoded()`. */
  codec?: Codec;
  /** Most events queued for a slow async-iterator consumer before the client drops (and reports) new ones. */
  pendingLimit?: number;
  /** Most bytes of events (whole frames: headers and topic count, not only the payload) queued for a slow async-iterator consumer (default 64 MiB) before the client drops (and reports) new ones. */
  pendingBytes?: number;
}

/**
 * Events an async-iterator queue keeps as views of the reads they arrived in
 * (each may hold a read alive, up to 64 KiB, beyond what `pendingBytes`
 * counts); an event queued behind this many is copied off its read (Msg.own).
 */
const OWN_AFTER = 64;

/**
 * What a queued event holds: its frame, and per decoded header ~64 B of
 * strings and slots beyond the header's bytes (5,334 tiny headers in a
 * 32 KB block held ~190 KB of heap: counted as their frame alone, 8 MiB
 * of pendingBytes held 52 MB).
 */
const weigh = (m: Msg): number => m.size + (m.headers ? 64 * Object.keys(m.headers).length : 0);

/** What a subscription needs from its client. */
export interface SubscriptionOwner {
  unsubscribe(sub: Subscription): void;
  drainSub(sub: Subscription): Promise<void>;
  /** An event was dropped for a slow consumer; `first` when the subscription just became slow. */
  slowConsumer(sub: Subscription, first: boolean): void;
  /** A resuming subscription that fell behind has room again: subscribe again from its position. */
  catchUp(sub: Subscription): void;
  callbackFailed(sub: Subscription, error: unknown): void;
}

/**
 * One subscription. Iterate it with `for await` (unless a callback was
 * given); it survives reconnects (the client resubscribes with the same sid).
 */
export class Subscription implements AsyncIterable<Msg> {
  /** Events handed to this subscription. */
  received = 0;
  /**
   * Events that reached this client for this subscription and were not handed
   * to the consumer: dropped for a slow consumer (see pendingLimit), or
   * arrived after the subscription ended (max reached, unsubscribe()). Each
   * is reported by a status event ('slow-consumer', 'dropped').
   */
  dropped = 0;
  /**
   * Events the node dropped for this subscription before they reached the
   * client ('drop' policy, queue toward this client full: SPEC §10.6), as
   * reported by the node ('slow-consumer' status with `source: 'node'`).
   */
  nodeDropped = 0;
  /** @internal drain() is under way: the UNSUB is sent, events routed before it still arrive. */
  draining = false;
  private readonly queue: QueuedIterator<Msg> | undefined;
  private readonly callback: ((msg: Msg) => unknown) | undefined;
  /** Position of the last event received (subscriptions with `recover` / `since`); save it to resume after a restart. */
  position: Position | undefined;
  /** After the node answered a resume: false when events were missed (history lost or trimmed). */
  recovered: boolean | undefined;
  /**
   * @internal A resuming subscription's consumer fell `pendingLimit` /
   * `pendingBytes` behind: events are not taken until the node answers the
   * catch-up SUB (its answer clears this, no other SubAck: durable.ts `catching`).
   */
  behind = false;
  private slow = false;
  private ended = false;
  private endError: MeshbusError | undefined;
  private readonly closedPromise: Promise<MeshbusError | undefined>;
  private resolveClosed!: (e: MeshbusError | undefined) => void;

  constructor(
    private readonly owner: SubscriptionOwner,
    /** Subscription id on the wire (SUB correlation). */
    readonly sid: number,
    readonly pattern: string,
    readonly options: SubscribeOptions,
  ) {
    this.callback = options.callback;
    this.position = options.since;
    if (!this.callback) {
      this.queue = new QueuedIterator<Msg>(Infinity, weigh);
      this.queue.onStop = () => this.unsubscribe();
    }
    this.closedPromise = new Promise((r) => (this.resolveClosed = r));
  }

  get queueGroup(): string | undefined {
    return this.options.queue;
  }
  get codec(): Codec | undefined {
    return this.options.codec;
  }
  /** Events waiting for the async-iterator consumer. */
  get pending(): number {
    return this.queue?.pending ?? 0;
  }
  /** True for subscriptions that resume from durable positions (`recover` or `since`). */
  get sequenced(): boolean {
    return this.options.recover === true || this.options.since !== undefined;
  }
  get isClosed(): boolean {
    return this.ended;
  }
  /** Resolves when the subscription ends: undefined after unsubscribe/close, the error when the node refused it. */
  get closed(): Promise<MeshbusError | undefined> {
    return this.closedPromise;
  }
  get error(): MeshbusError | undefined {
    return this.endError;
  }

  /** Stops the subscription; events already queued are still yielded. Idempotent. */
  unsubscribe(): void {
    if (this.ended) return;
    this.owner.unsubscribe(this);
  }

  /**
   * Stops the subscription without losing events: sends UNSUB, waits for a
   * round trip to the node so every event it routed here before the UNSUB
   * has arrived, hands those to the callback / iterator, then ends the
   * subscription and resolves. For a queue-group member, the group's other
   * members get everything after the UNSUB. Resolves at once when already
   * ended; when the connection is lost meanwhile it ends then (the node drops
   * the subscription with the connection). Never rejects.
   */
  drain(): Promise<void> {
    return this.owner.drainSub(this);
  }

  [Symbol.asyncIterator](): AsyncIterator<Msg> {
    if (!this.queue) throw invalid('a subscription with a callback is not iterable');
    return this.queue;
  }

  /** @internal Hands one event to the consumer. Returns false once `max` is reached (the owner then ends it). */
  deliver(msg: Msg): boolean {
    if (this.ended) return false;
    const p = this.sequenced ? msg.position : undefined;
    if (p) {
      // Behind: read again from history by the catch-up, after the position of the last event handed over.
      if (this.behind) return true;
      // The node keeps order; this drops a duplicate at a seam should one ever get through.
      if (this.position && p.epoch === this.position.epoch && p.offset <= this.position.offset) return true;
    }
    this.received++;
    if (this.callback) {
      if (p) this.position = p;
      const job = this.options.durable === true && msg.needsAck;
      try {
        const r = this.callback(msg);
        // An async callback's rejection is its throw: reported (and a job NACKed), never an unhandled rejection.
        if (r && typeof (r as Promise<void>).then === 'function') {
          (r as Promise<void>).then(
            job ? () => msg.ack() : undefined,
            (e: unknown) => {
              if (job) msg.nack(e);
              this.owner.callbackFailed(this, e);
            },
          );
        } else if (job) msg.ack();
      } catch (e) {
        if (job) msg.nack(e);
        this.owner.callbackFailed(this, e);
      }
    } else {
      const q = this.queue!;
      const limit = this.options.pendingLimit ?? 65_536;
      // Bytes too: 65,536 events of 1 MiB would be 64 GiB (2,000 of 256 KiB held 500 MiB). One event always fits an empty queue.
      const bytes = this.options.pendingBytes ?? 64 * 1024 * 1024;
      if (q.pending >= limit || (q.weight > 0 && q.weight + weigh(msg) > bytes)) {
        if (p) {
          // A resuming subscription drops nothing: once the consumer has taken half of what waits, it asks the
          // node again from its position (SUB `since`: history is its buffer) and takes nothing until answered.
          this.received--;
          this.behind = true;
          q.onTake = () => {
            if (q.pending > limit / 2 || q.weight > bytes / 2) return;
            q.onTake = undefined;
            this.owner.catchUp(this);
          };
          return true;
        }
        this.dropped++;
        const first = !this.slow;
        this.slow = true;
        this.owner.slowConsumer(this, first);
      } else {
        if (this.slow && q.pending < limit / 2 && q.weight < bytes / 2) this.slow = false;
        // One that waits behind OWN_AFTER others gets bytes of its own, so a queue keeps at most OWN_AFTER
        // reads alive (3,000 waiting events of 1 byte held 90 MB of 30 KB reads); one taken at once costs no copy.
        q.push(q.pending < OWN_AFTER ? msg : msg.own());
        if (p) this.position = p;
      }
    }
    const max = this.options.max;
    if (max !== undefined && this.received >= max) return false;
    return true;
  }

  /** @internal Ends the subscription (after the owner removed it). */
  end(error?: MeshbusError): void {
    if (this.ended) return;
    this.ended = true;
    this.endError = error;
    if (this.queue) {
      this.queue.onStop = undefined;
      this.queue.end(error);
    }
    this.resolveClosed(error);
  }
}

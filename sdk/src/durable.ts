/**
 * `@meshbus/sdk/durable`: acked and delayed publish, resuming durable
 * topics (`since` / `recover`) and settling durable queue jobs. The Node
 * entry passes it to every client; in the browser and mobile entries it is
 * an opt-in import, so bundles without it stay small:
 *
 *     import { connect } from '@meshbus/sdk/browser';
 *     import { durable } from '@meshbus/sdk/durable';
 *     const client = await connect('wss://host/', { durable });
 */
import { ClientError, FrameType, Flags, MAX_SUB_REF, decodePubAck, decodeSubAck, encodeBody, type Extension, type Frame, type MeshbusError, type Position, type SubBody } from '@meshbus/proto';
import type { Connection } from './connection.js';
import type { DurableExtension, DurableFeature, DurableHost } from './durable-api.js';
import { errorFrom } from './connection.js';
import { asError, connectionClosed, safely } from './errors.js';
import { MemoryOutbox, addOrOverflow, type OutboxLimits } from './outbox.js';
import type { Correlated } from './pending.js';
import type { Subscription } from './subscription.js';
import { after } from './timer.js';

export type { DurableExtension, DurableFeature, DurableHost } from './durable-api.js';

interface PendingAck extends Correlated {
  readonly kind: 'ack';
  topic: string;
  payload: Uint8Array;
  headers: Record<string, string> | undefined;
  delay: number | undefined;
  /** ms to wait for the ACK once sent (PublishOptions.ackTimeout). */
  ackTimeout: number;
  resolve(p: Position | undefined): void;
}

/**
 * Default wait for a node's ACK, ms: well above a node's own answer time (a
 * durable write is NACKed after `writeTimeoutMs`, 5 s by default), so it
 * fires only for a node that never answers, which otherwise held the
 * promise and its payload until the connection dropped.
 */
const ACK_TIMEOUT = 30_000;

/** The durable features, for `connect(servers, { durable })`. */
export const durable: DurableFeature = (host) => new Durable(host);

class Durable implements DurableExtension {
  /** Acked publishes made while disconnected, sent on the next connection. */
  private waiting: PendingAck[] = [];
  /**
   * Their bound: the outbox's limits (its defaults beside a custom Outbox),
   * none allowed with `outbox: false`. Each keeps its payload: without it an
   * offline loop of acked publishes grew the client without limit while
   * plain publishes got MB_ERR_OUTBOX_FULL.
   */
  private readonly room: MemoryOutbox | undefined;
  /** Acked publishes sent and not settled, in the order they were sent (a drain's GOODBYE sends the unanswered ones again). */
  private readonly sent = new Set<PendingAck>();
  /**
   * Resuming subscriptions behind their consumer whose SUB (a catch-up, or a reconnect's) waits for its answer, the
   * only SubAck that ends `behind`: the one echoing that SUB's `ref` (SPEC 15.3). Others on the sid are the replaced
   * subscription's (its answer, its gap notices), whose events the answer's replay brings again. `told`: sent on
   * another connection than the last answer (a reconnect's resume, which the app hears of).
   */
  private readonly catching = new WeakMap<Subscription, { ref: number; told: boolean }>();
  /** The `ref` of the last SUB of a resuming subscription (1..MAX_SUB_REF, round). */
  private ref = 0;
  /** The connection each resuming subscription was last answered on: a SUB sent on it while behind is a catch-up. */
  private readonly answeredOn = new WeakMap<Subscription, Connection>();

  constructor(private readonly host: DurableHost) {
    // A MemoryOutbox's own limits (read as fields: this module may be loaded beside a bundle with its own class).
    const ob = host.outbox;
    this.room = ob && new MemoryOutbox(ob as OutboxLimits);
  }

  publish(topic: string, data: Uint8Array, options: { headers?: Record<string, string>; delay?: number; at?: Date | number; ackTimeout?: number }): Promise<Position | undefined> {
    let delay = options.delay;
    const ackTimeout = options.ackTimeout ?? ACK_TIMEOUT;
    if (!(ackTimeout > 0)) throw new ClientError('MB_ERR_INVALID_ARGUMENT', `ackTimeout must be > 0, got ${String(ackTimeout)}`);
    const at = options.at;
    if (at !== undefined) {
      const ms: unknown = at instanceof Date ? at.getTime() : at;
      if (typeof ms !== 'number' || !Number.isFinite(ms)) throw new ClientError('MB_ERR_INVALID_ARGUMENT', `at must be a Date or a time in ms, got ${String(at)}`);
      delay = Math.max(0, Math.round(ms - Date.now()));
    }
    if (delay !== undefined && !(Number.isInteger(delay) && delay >= 0)) throw new ClientError('MB_ERR_INVALID_ARGUMENT', `delay must be a non-negative integer (ms), got ${String(delay)}`);
    const p: PendingAck = { kind: 'ack', id: 0, topic, payload: data, headers: options.headers, delay, ackTimeout, resolve: () => {}, reject: () => {} };
    const conn = this.host.live(data.length);
    if (!conn) {
      this.reserve(p);
      this.host.order.stamp(p);
    }
    const promise = new Promise<Position | undefined>((resolve, reject) => {
      p.resolve = (pos) => {
        this.sent.delete(p);
        resolve(pos);
      };
      p.reject = (e) => {
        this.sent.delete(p);
        reject(e);
      };
    });
    if (conn) this.send(conn, p);
    else this.waiting.push(p);
    return promise;
  }

  /** Room for `p` among the acked publishes waiting offline; throws (with an 'outbox-overflow' status) when there is none. */
  private reserve(p: PendingAck): void {
    if (!this.room) throw connectionClosed('not connected and the outbox is disabled');
    addOrOverflow(this.room, { topic: p.topic, payload: p.payload, headers: p.headers, at: 0 }, this.host);
  }

  private send(conn: Connection, p: PendingAck): void {
    const id = this.host.pending.add(p);
    this.sent.add(p);
    // From the send: waiting offline is bounded by the outbox, waiting for the node by this.
    p.timer = after(p.ackTimeout, () => {
      this.host.pending.remove(p);
      p.reject(new ClientError('MB_ERR_TIMEOUT', `no ACK for "${p.topic}" within ${p.ackTimeout} ms: the node may have stored it (publish again only where a duplicate is harmless)`));
    });
    const ext: Extension = {};
    if (p.headers) ext.headers = p.headers;
    if (p.delay !== undefined && p.delay > 0) ext.delay = p.delay;
    conn.sendEvent({ type: FrameType.PUB, topic: p.topic, payload: p.payload, ext, correlation: id, flags: Flags.ACK_REQUESTED });
    this.host.counters.outMsgs++;
    this.host.counters.outBytes += p.payload.length;
  }

  firstSeq(): number {
    const p = this.waiting[0];
    return p ? this.host.order.seq(p) : Infinity;
  }

  resend(conn: Connection, step: (i: number) => void, before: number): void {
    const acked = this.waiting;
    this.waiting = [];
    this.room?.clear();
    let i = 0;
    for (const p of acked) {
      if (!conn.isOpen || this.host.order.seq(p) >= before) {
        this.waiting.push(p);
        // Back in the room it had: it fits.
        this.room?.add({ topic: p.topic, payload: p.payload, headers: p.headers, at: 0 });
        continue;
      }
      const err = safely(() => {
        step(i++);
        this.send(conn, p);
      });
      if (err) {
        this.host.pending.remove(p);
        p.reject(err);
      }
    }
  }

  onAck(f: Frame): void {
    const id = f.correlation;
    const p = this.host.pending.take<PendingAck>(id, 'ack');
    if (p) {
      if (f.type === FrameType.NACK) {
        const err = errorFrom(f);
        // Not taken by a draining node (SPEC 10.7): the next connection sends it.
        if (err.num === 2012) this.requeue([p]);
        else p.reject(err);
      } else {
        try {
          p.resolve(decodePubAck(f.payload));
        } catch {
          p.resolve(undefined);
        }
      }
      return;
    }
    const sub = this.host.sub(id);
    const conn = this.host.current();
    if (sub && conn && f.type === FrameType.ACK && f.payloadLen > 0) {
      let body;
      try {
        body = decodeSubAck(f.payload);
      } catch (e) {
        this.host.emit({ type: 'error', error: asError(e), sid: id });
        return;
      }
      let quiet = false;
      if (sub.behind) {
        const c = this.catching.get(sub);
        // No catch-up sent yet (it comes when the consumer has room), or not its answer (another `ref`). Without `ref` (an
        // older node) any SubAck after the catch-up SUB is taken as its answer.
        if (!c || (body.ref !== undefined && body.ref !== c.ref)) return;
        // The SUB is answered: what follows on the sid is the new subscription's (a catch-up's replay, Subscription.behind).
        this.catching.delete(sub);
        sub.behind = false;
        // A catch-up is the client's own business: the app hears of it when it could not recover, not each time.
        quiet = !c.told && body.recovered;
      }
      this.answeredOn.set(sub, conn);
      // Epoch '' is no position, only a SUB's "from now" (SPEC 15.3): older nodes answered so when their store failed
      // the read. Taking it lost the last real position, and the next resume, "from now", claimed recovered = true
      // for events never received. The position stays.
      if (body.epoch === '') return;
      sub.position = { epoch: body.epoch, offset: body.offset };
      if (quiet) return;
      sub.recovered = body.recovered;
      this.host.emit({ type: 'recovery', sid: id, pattern: sub.pattern, recovered: body.recovered, position: { ...sub.position } });
    }
  }

  drained(): void {
    const open: PendingAck[] = [];
    for (const p of this.sent) if (this.host.pending.take<PendingAck>(p.id, 'ack') === p) open.push(p);
    this.requeue(open);
  }

  /**
   * Acked publishes sent and not taken: they wait again, before anything made
   * offline (never stamped: OfflineOrder's 0), in the order they were sent.
   */
  private requeue(ps: PendingAck[]): void {
    let at = 0;
    while (at < this.waiting.length && this.host.order.seq(this.waiting[at]!) === 0) at++;
    const back: PendingAck[] = [];
    for (const p of ps) {
      this.sent.delete(p);
      const err = safely(() => this.reserve(p));
      if (err) p.reject(err);
      else back.push(p);
    }
    this.waiting.splice(at, 0, ...back);
  }

  settle(correlation: number, ok: boolean, reason?: string): void {
    const conn = this.host.current();
    if (!conn) return; // the node fails the delivery when the connection drops; the job is retried
    if (ok) conn.sendFrame({ type: FrameType.ACK, correlation });
    else conn.sendFrame({ type: FrameType.NACK, correlation, payload: encodeBody({ code: 9001, message: nackReason(reason) }) });
  }

  subBody(sub: Subscription, body: SubBody): void {
    // Resume from the last position seen (after a reconnect, on any node, or again after ERROR MB_ERR_STORE_UNAVAILABLE
    // on the sid: engine.ts onError), or "from now".
    if (sub.sequenced) {
      body.since = sub.position ? [sub.position.epoch, sub.position.offset] : ['', 0];
      // Echoed in the SubAcks of the subscription this SUB makes (SPEC 15.3): while behind, only its answer ends that.
      body.ref = this.ref = (this.ref % MAX_SUB_REF) + 1;
      const conn = this.host.current();
      if (sub.behind && conn) this.catching.set(sub, { ref: body.ref, told: this.answeredOn.get(sub) !== conn });
    }
    if (sub.options.durable) body.durable = true;
  }

  close(err: MeshbusError): void {
    this.room?.clear();
    for (const p of this.waiting.splice(0)) p.reject(err);
  }
}

/**
 * A NACK's reason within the node's bound on its body (4,096 bytes, SPEC 10.10): 1,000 UTF-16 units are at most
 * 3,000 bytes. A longer one was refused (MB_ERR_OUT_OF_RANGE with the delivery id, which may also be a sid) and the
 * job not failed, only timed out. Not cut inside a surrogate pair (a lone surrogate is no UTF-8).
 */
function nackReason(reason = 'handler failed'): string {
  if (reason.length <= MAX_NACK_REASON) return reason;
  const hi = reason.charCodeAt(MAX_NACK_REASON - 1);
  return reason.slice(0, hi >= 0xd800 && hi <= 0xdbff ? MAX_NACK_REASON - 1 : MAX_NACK_REASON);
}
const MAX_NACK_REASON = 1000;

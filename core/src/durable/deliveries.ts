import { withDelivery } from './frames.js';
import type { Member } from './queue-worker.js';

/**
 * Why a delivery ended: its node stops. Not the consumer's failure: the job
 * goes back to the queue without counting an attempt (SPEC 15.5).
 */
export class NodeStopping extends Error {
  constructor() {
    super('node stopping');
    this.name = 'NodeStopping';
  }
}

interface Delivery {
  member: Member;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * The durable queue deliveries of a node waiting for their consumer's
 * ACK/NACK, by delivery id (the frame's `correlation`).
 */
export class Deliveries {
  private readonly open = new Map<number, Delivery>();
  private next = 0;

  constructor(private readonly ackTimeoutMs: number) {}

  /**
   * Hands `frame` to `member` as a delivery; resolves on its ACK, rejects on
   * its NACK, without an answer within ackTimeoutMs, or when disconnected() or
   * stopAll() ends it.
   */
  deliver(member: Member, frame: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.next = this.next >= 0xffffffff ? 1 : this.next + 1;
      const id = this.next;
      const timer = setTimeout(() => {
        this.open.delete(id);
        reject(new Error(`no ACK within ${this.ackTimeoutMs} ms`));
      }, this.ackTimeoutMs);
      this.open.set(id, { member, resolve, reject, timer });
      member.sub.owner.deliver(withDelivery(frame, id), member.sub.sid);
    });
  }

  /**
   * Ends the deliveries to the members `which` picks, whose connection is
   * gone. A failed attempt, unless `nodeStopping`: from the start of its
   * node's stop a consumer leaves because the node told it to (GOODBYE) or
   * cut it, not by a failure of its own (SPEC 15.5). Asked at the moment the
   * consumer is found gone, not when the node closes its queues: a drain cuts
   * or says GOODBYE to its sessions first, and one found closed meanwhile (a
   * queue-set notice, the 5 s refresh) cost its job an attempt (with
   * `attempts: 1` it was dead-lettered, never delivered again).
   */
  disconnected(which: (m: Member) => boolean, nodeStopping: boolean): void {
    for (const [id, d] of this.open) {
      if (!which(d.member)) continue;
      this.end(id, d, nodeStopping ? new NodeStopping() : new Error('consumer disconnected'));
    }
  }

  /** ACK/NACK from a client for delivery `id`; false when it names no delivery to a member of `owner`. */
  settle(owner: unknown, id: number, ok: boolean, reason: string): boolean {
    const d = this.open.get(id);
    if (!d || d.member.sub.owner !== owner) return false;
    if (ok) {
      this.open.delete(id);
      clearTimeout(d.timer);
      d.resolve();
    } else this.end(id, d, new Error(reason || 'rejected by consumer'));
    return true;
  }

  /** The node stops: every delivery in progress ends with NodeStopping. */
  stopAll(): void {
    for (const [id, d] of this.open) this.end(id, d, new NodeStopping());
  }

  private end(id: number, d: Delivery, e: Error): void {
    this.open.delete(id);
    clearTimeout(d.timer);
    d.reject(e);
  }
}

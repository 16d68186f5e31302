import type { NodeContext } from './node-context.js';
import type { Subscription } from './subscriber.js';
import { DeliveryPolicy } from './subscription-policy.js';
import { weightOf } from './subscription-weight.js';

/**
 * One client connection's subscriptions by sid, kept in step with the node's
 * routing table, the connection's reserved-topic filter (DeliveryPolicy) and
 * durability; and the `max` of SUB/UNSUB: a subscription ends by itself
 * after that many deliveries.
 */
export class SessionSubscriptions {
  /**
   * The subscriptions by sid: the first as itself, a Map from the second on
   * (an empty Map is ~184 B of heap; most connections of a device fleet hold
   * one subscription: issue #15's RSS per idle connection).
   */
  private one: Subscription | undefined;
  private more: Map<number, Subscription> | undefined;
  /** How many have a `max` (0: deliveries are not looked up). */
  private limited = 0;
  /** Their weight together (subscription-weight.ts: what maxSubscriptions bounds). */
  private weightSum = 0;
  /** The connection's reserved-topic filter, kept up to date per SUB/UNSUB. */
  readonly policy: DeliveryPolicy;

  constructor(
    clientId: string,
    private readonly ctx: NodeContext,
  ) {
    this.policy = new DeliveryPolicy(`_INBOX.${clientId}.`);
  }

  get size(): number {
    return this.more !== undefined ? this.more.size : this.one !== undefined ? 1 : 0;
  }

  /** The weight of the subscriptions held (what maxSubscriptions bounds). */
  get weight(): number {
    return this.weightSum;
  }

  get(sid: number): Subscription | undefined {
    if (this.more !== undefined) return this.more.get(sid);
    return this.one?.sid === sid ? this.one : undefined;
  }

  has(sid: number): boolean {
    return this.get(sid) !== undefined;
  }

  values(): IterableIterator<Subscription> {
    return this.more !== undefined ? this.more.values() : (this.one !== undefined ? [this.one] : []).values();
  }

  /** Adds `sub` under its sid, in place of the one there, and routes it; `max`: it ends after that many deliveries. */
  add(sub: Subscription, max: number | undefined): void {
    if (max !== undefined) limit(sub, max);
    const old = this.get(sub.sid);
    if (old) this.detach(old);
    this.set(sub);
    this.weightSum += weightOf(sub);
    this.policy.add(sub);
    if (sub.max !== undefined) this.limited++;
    this.ctx.table.add(sub);
  }

  /** UNSUB with a `max`: the subscription ends after that many more deliveries. */
  limit(sub: Subscription, max: number): void {
    const had = sub.max !== undefined;
    limit(sub, max);
    if (!had) this.limited++;
    this.ctx.table.limitChanged(sub);
  }

  /** One delivery to `sub` (which has a max); at the max the subscription ends, as if UNSUB'd. */
  countDelivery(sub: Subscription): void {
    if (++sub.delivered! >= sub.max! && this.get(sub.sid) === sub) this.remove(sub.sid);
  }

  /** A delivery addressed to `sid` (queue, durable, resumed): counted when its subscription has a max. */
  countSid(sid: number): void {
    if (this.limited === 0) return;
    const sub = this.get(sid);
    if (sub?.max !== undefined) this.countDelivery(sub);
  }

  remove(sid: number): void {
    const sub = this.get(sid);
    if (!sub) return;
    if (this.more !== undefined) this.more.delete(sid);
    else this.one = undefined;
    this.detach(sub);
  }

  /** The connection closes: every subscription leaves the table. */
  clear(): void {
    const all = [...this.values()];
    this.one = this.more = undefined;
    for (const sub of all) this.detach(sub);
  }

  /** Puts `sub` under its sid (in place of one there). */
  private set(sub: Subscription): void {
    if (this.more !== undefined) this.more.set(sub.sid, sub);
    else if (this.one === undefined || this.one.sid === sub.sid) this.one = sub;
    else {
      this.more = new Map([[this.one.sid, this.one], [sub.sid, sub]]);
      this.one = undefined;
    }
  }

  private detach(sub: Subscription): void {
    this.weightSum -= weightOf(sub);
    this.policy.remove(sub);
    if (sub.max !== undefined) this.limited--;
    this.ctx.table.remove(sub);
    this.ctx.durability?.unsubscribed(sub);
  }
}

/** Gives `sub` a limit of `max` deliveries from now. */
function limit(sub: Subscription, max: number): void {
  sub.max = max;
  sub.delivered = 0;
}

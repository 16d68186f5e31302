import type { Frame } from '@meshbus/proto';
import type { EventSource, Subscriber, Subscription, Throttled } from './subscriber.js';

/** Internal subscribers take negative uids: never the uid of a client session (from 1) or a peer link. */
let nextUid = -1;

/**
 * A receiver inside the node (the HTTP inbox, an HTTP trace, the node's own
 * publishes): kind 'internal', never congested, never paused. Its
 * subscriptions are local interest (announced to peers like a client's, and
 * preferred in queue groups) but are not counted as clients' in views and
 * metrics.
 */
export class InternalSubscriber implements Subscriber, EventSource {
  readonly kind = 'internal' as const;
  readonly uid = nextUid--;
  readonly congested = false;
  readonly echo = true;

  constructor(
    readonly label: string,
    private readonly onEvent: (frame: Frame, sid: number) => void = () => {},
  ) {}

  /** Must not throw: the callback's errors are the callback's to handle. */
  deliver(frame: Frame, sid: number): void {
    this.onEvent(frame, sid);
  }

  addWaiter(_w: Throttled): void {
    // Never congested: an event is handed over at once.
  }

  blockOn(_receiver: Subscriber): void {
    // A node-internal publisher is never paused (an HTTP request simply waits for its answer).
  }

  unblock(_receiver: Subscriber): void {}
}

/** A node-internal subscription (MeshNode.subscribeInternal). */
export interface InternalSubscription {
  /** The receiver; pass it as `from` when publishing on its behalf (so it is named in traces). */
  readonly subscriber: InternalSubscriber;
  readonly subscription: Subscription;
  /** Leaves the routing table; safe to call twice. */
  unsubscribe(): void;
}

/** Options of MeshNode.subscribeInternal. */
export interface InternalSubscribeOptions {
  /** How traces and views name the receiver, e.g. "http inbox". */
  label: string;
  /** Queue group: one member of the group gets each event. */
  queue?: string;
}

/**
 * Subscribes a receiver inside the node to `pattern` in `table` (the node's
 * routing table): `deliver` gets each matching event (a view valid only
 * during the call; copy what you keep; must not throw). Its kind is
 * 'internal': local interest (announced to peers, preferred in queue
 * groups), never congested, not counted as a client.
 */
export function subscribeInternal(table: { add(s: Subscription): void; remove(s: Subscription): void }, pattern: string, deliver: (frame: Frame, sid: number) => void, o: InternalSubscribeOptions): InternalSubscription {
  const subscriber = new InternalSubscriber(o.label, deliver);
  const subscription: Subscription = { sid: 1, pattern, queue: o.queue, owner: subscriber, slow: 'drop' };
  table.add(subscription);
  let live = true;
  return {
    subscriber,
    subscription,
    unsubscribe: () => {
      if (live) table.remove(subscription);
      live = false;
    },
  };
}

import type { Frame } from '@meshbus/proto';

/**
 * Anything the routing table delivers events to: a client connection (TCP
 * or WebSocket) or, in a cluster, a peer link. One interface, so routing
 * does not care which.
 */
export interface Subscriber {
  /** 'client' receivers are preferred over 'peer' ones for queue groups. */
  readonly kind: 'client' | 'peer';
  /** Unique per node; used to deliver an event once per subscriber. */
  readonly uid: number;
  /**
   * Hands over one event. `sid` is 0 for plain delivery, or the member
   * subscription chosen for a queue group. Must not throw.
   */
  deliver(frame: Frame, sid: number): void;
  /** True while the receiver's queue is past its high-water mark. */
  readonly congested: boolean;
  /** Registers a publisher to be told when this receiver is no longer congested. */
  addWaiter(w: Throttled): void;
}

/** A sender that can be paused while one of its receivers catches up. */
export interface Throttled {
  /** `receiver` drained (or went away): stop waiting for it. */
  unblock(receiver: Subscriber): void;
}

export type SlowPolicy = 'drop' | 'disconnect';

/** One subscription: a pattern, an optional queue group and its owner. */
export interface Subscription {
  readonly sid: number;
  readonly pattern: string;
  readonly queue: string | undefined;
  readonly owner: Subscriber;
  readonly slow: SlowPolicy;
}

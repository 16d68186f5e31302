import type { Throttled, Subscriber } from '../subscriber.js';
import { ReceiverWaiters } from '../flow-control.js';

/** Durable writes waiting for Redis: publishers pause at PAUSE, resume at RESUME, and are refused at MAX. */
export const PAUSE_IN_FLIGHT = 2_000;
export const RESUME_IN_FLIGHT = 500;
export const MAX_IN_FLIGHT = 20_000;

/**
 * The receiver publishers wait for while Redis is behind: it plugs into the
 * node's flow control (SourceThrottle) like a congested subscriber.
 */
export class StoreGate implements Subscriber {
  readonly kind = 'internal' as const;
  readonly uid = -2_000_000_000;
  readonly label = 'durable store';
  private readonly waiters = new ReceiverWaiters();
  get congested(): boolean {
    return !this.waiters.overrun;
  }
  deliver(): void {}
  addWaiter(w: Throttled): void {
    this.waiters.add(w);
  }
  markOverrun(): void {
    this.waiters.overrun = true;
  }
  release(): void {
    this.waiters.release(this);
  }
}

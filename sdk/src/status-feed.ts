import { Emitter } from './emitter.js';
import { QueuedIterator } from './queued-iterator.js';
import type { Status } from './types.js';

/**
 * Status events one `status()` iterator keeps waiting for its consumer; past
 * it the oldest are dropped and counted in `stats().statusDropped` (a node's
 * ERROR storm once grew a slow consumer's heap ~9x what the node sent:
 * 300,000 ERROR frames, 27.6 MB, became 257 MB of queued status events).
 */
export const STATUS_BACKLOG = 1024;

/**
 * Where a client's status events go: listeners (`on`), called at once, and
 * `status()` iterators, each holding at most STATUS_BACKLOG events for its
 * consumer, so what a node sends never queues without bound in the client.
 */
export class StatusFeed {
  readonly emitter = new Emitter<{ status: Status }>();
  private readonly iterators = new Set<QueuedIterator<Status>>();

  /** `counters.statusDropped` counts the events iterators dropped. */
  constructor(private readonly counters: { statusDropped: number }) {}

  emit(s: Status): void {
    this.emitter.emit('status', s);
    for (const it of this.iterators) {
      const was = it.overflowed;
      it.push(s);
      if (it.overflowed !== was) this.counters.statusDropped++;
    }
  }

  /** The events from now on as an async iterator; done at once when `closed`. */
  iterator(closed: boolean): AsyncIterableIterator<Status> {
    const it = new QueuedIterator<Status>(STATUS_BACKLOG);
    if (closed) {
      it.end();
      return it;
    }
    const its = this.iterators;
    its.add(it);
    it.onStop = () => its.delete(it);
    return it;
  }

  /** The client closed: each iterator ends after the events it holds. */
  end(): void {
    for (const it of this.iterators) it.end();
    this.iterators.clear();
  }
}

/**
 * A tiny typed event emitter with no platform dependency (node:events is not
 * available in browsers or embedded runtimes). `M` maps event names to the
 * payload type of that event.
 */
export type Listener<T> = (event: T) => void;

export class Emitter<M extends object> {
  private readonly listeners = new Map<keyof M, Set<Listener<never>>>();

  /** `onListenerError` receives what a listener throws; by default it is rethrown from a timer (an uncaught error). */
  constructor(private readonly onListenerError: (error: unknown) => void = rethrowLater) {}

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof M>(type: K, fn: Listener<M[K]>): () => void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(fn as Listener<never>);
    return () => this.off(type, fn);
  }

  off<K extends keyof M>(type: K, fn: Listener<M[K]>): void {
    this.listeners.get(type)?.delete(fn as Listener<never>);
  }

  /**
   * Calls every listener of `type`. A listener that throws does not stop the
   * others nor the caller's state machine: its error goes to `onListenerError`.
   */
  emit<K extends keyof M>(type: K, event: M[K]): void {
    const set = this.listeners.get(type);
    if (!set || set.size === 0) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<M[K]>)(event);
      } catch (e) {
        this.onListenerError(e);
      }
    }
  }

  listenerCount(type: keyof M): number {
    return this.listeners.get(type)?.size ?? 0;
  }
}

function rethrowLater(e: unknown): void {
  setTimeout(() => {
    throw e;
  }, 0);
}

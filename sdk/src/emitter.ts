/**
 * A tiny typed event emitter with no platform dependency (node:events is not
 * available in browsers or embedded runtimes). `M` maps event names to the
 * payload type of that event.
 */
export type Listener<T> = (event: T) => void;

export class Emitter<M extends object> {
  private readonly listeners = new Map<keyof M, Set<Listener<never>>>();

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
   * others nor the caller's state machine: its error is rethrown on a fresh
   * microtask so it still surfaces as an uncaught error.
   */
  emit<K extends keyof M>(type: K, event: M[K]): void {
    const set = this.listeners.get(type);
    if (!set || set.size === 0) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<M[K]>)(event);
      } catch (e) {
        void Promise.resolve().then(() => {
          throw e;
        });
      }
    }
  }

  listenerCount(type: keyof M): number {
    return this.listeners.get(type)?.size ?? 0;
  }
}

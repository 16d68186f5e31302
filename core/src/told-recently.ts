/**
 * Which log lines were said recently, so a line something outside can make
 * the node repeat (a peer link refused as a topology at every redial of a
 * misconfigured node; a durable queue's Redis connection failing at every
 * reconnect attempt: every few seconds, forever) is said once per `every` ms
 * per key.
 * At most `max` keys are remembered, the one told longest ago forgotten
 * first (a forgotten key is said again: never silence, only repetition).
 */
export class ToldRecently {
  private readonly at = new Map<string, number>();

  /** every: ms before a key is said again; max: keys remembered. */
  constructor(
    private readonly every: number,
    private readonly max = 1024,
  ) {}

  /** True when `key` was not said within `every` ms; it counts as said now. */
  due(key: string, now = Date.now()): boolean {
    const last = this.at.get(key);
    if (last !== undefined && now - last < this.every) return false;
    this.at.delete(key);
    this.at.set(key, now);
    if (this.at.size > this.max) this.at.delete(this.at.keys().next().value!);
    return true;
  }
}

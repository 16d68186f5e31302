import type { OwnedPattern } from './owned-pattern.js';
import type { Subscriber } from './subscriber.js';

/**
 * The routing table's entries by owner and pattern. An owner holding one
 * pattern (a device's inbox, most client connections) keeps its entry as
 * itself; a Map is made at its second pattern. An empty Map costs ~184 B of
 * heap (its object and its smallest hash table), which was a quarter of
 * what an idle connection added to the node beyond its socket (issue #15:
 * RSS per idle connection, bench/src/footprint.ts).
 */
export class OwnerPatterns {
  private readonly byOwner = new Map<Subscriber, OwnedPattern | Map<string, OwnedPattern>>();

  get(owner: Subscriber, pattern: string): OwnedPattern | undefined {
    const own = this.byOwner.get(owner);
    if (own === undefined || !(own instanceof Map)) return own?.pattern === pattern ? own : undefined;
    return own.get(pattern);
  }

  /** Adds `held` under its owner and pattern (none is there yet). */
  add(held: OwnedPattern): void {
    const own = this.byOwner.get(held.owner);
    if (own === undefined) this.byOwner.set(held.owner, held);
    else if (own instanceof Map) own.set(held.pattern, held);
    else this.byOwner.set(held.owner, new Map([[own.pattern, own], [held.pattern, held]]));
  }

  delete(held: OwnedPattern): void {
    const own = this.byOwner.get(held.owner);
    if (own === held) this.byOwner.delete(held.owner);
    else if (own instanceof Map && own.get(held.pattern) === held) {
      own.delete(held.pattern);
      if (own.size === 0) this.byOwner.delete(held.owner);
    }
  }
}

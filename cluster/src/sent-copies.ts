import type { Frame } from '@meshbus/proto';

/**
 * Queue copies a hub sent one keyed leaf, by (origin, seq): the only events
 * that leaf may hand back as re-sent (SPEC 10.3, member-gone.ts), each once.
 * A leaf's own events must carry its own origin; a re-sent copy keeps the
 * origin of whoever published it, so without this a keyed leaf (which holds
 * no cluster secret) could stamp any node's origin on a "re-sent" copy, and
 * a far-future sequence made the hub's other leaves drop that node's events
 * as old. A leaf hands a copy back within the round trip in which its member
 * ended, so the last `capacity` copies are kept (a ring: a copy older than
 * that is refused like a forged one, counted in the hub's badPeerEvents).
 * Memory: about 100 bytes a copy, made on the first queue copy to the leaf.
 */
export class SentCopies {
  private readonly ring: Array<string | undefined>;
  private readonly held = new Map<string, number>();
  private next = 0;

  constructor(readonly capacity = 1024) {
    this.ring = new Array<string | undefined>(capacity);
  }

  /** A queue copy of `f` went to the leaf. */
  sent(f: Frame): void {
    const key = keyOf(f);
    const old = this.ring[this.next];
    if (old !== undefined) this.forget(old);
    this.ring[this.next] = key;
    this.next = (this.next + 1) % this.capacity;
    this.held.set(key, (this.held.get(key) ?? 0) + 1);
  }

  /** True (and no longer held) when `f` is a copy the leaf was sent and has not handed back yet. */
  takeBack(f: Frame): boolean {
    const key = keyOf(f);
    if (!this.held.has(key)) return false;
    this.forget(key);
    // Its slot in the ring stays until overwritten: forget() then finds nothing, or another copy of the same key.
    const i = this.ring.lastIndexOf(key);
    if (i >= 0) this.ring[i] = undefined;
    return true;
  }

  private forget(key: string): void {
    const n = this.held.get(key)!;
    if (n <= 1) this.held.delete(key);
    else this.held.set(key, n - 1);
  }
}

function keyOf(f: Frame): string {
  return `${f.origin}.${f.seq}`;
}

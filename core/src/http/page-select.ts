/**
 * Entries `offset` .. `offset + limit` of `items` in `before` order, without
 * sorting them all: the first `offset + limit` are kept in a heap whose top
 * is the worst kept, so a page near the front of a large list (the usual
 * one: `?limit=100`) costs n·log(k) comparisons and k entries of memory
 * instead of a sorted copy of every entry. Past half the list a full sort
 * is as cheap.
 */
export function pageOf<T>(items: Iterable<T>, size: number, offset: number, limit: number, before: (a: T, b: T) => boolean): T[] {
  const k = offset + limit;
  if (offset >= size) return [];
  const order = (a: T, b: T): number => (before(a, b) ? -1 : before(b, a) ? 1 : 0);
  if (k * 2 >= size) return [...items].sort(order).slice(offset, k);
  // A max-heap by `before`: heap[0] is the entry every other kept one comes before.
  const heap: T[] = [];
  const worse = (i: number, j: number): boolean => before(heap[j]!, heap[i]!);
  const swap = (i: number, j: number): void => {
    const t = heap[i]!;
    heap[i] = heap[j]!;
    heap[j] = t;
  };
  for (const item of items) {
    if (heap.length < k) {
      heap.push(item);
      for (let i = heap.length - 1; i > 0; ) {
        const p = (i - 1) >> 1;
        if (!worse(i, p)) break;
        swap(i, p);
        i = p;
      }
    } else if (before(item, heap[0]!)) {
      heap[0] = item;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let w = i;
        if (l < heap.length && worse(l, w)) w = l;
        if (r < heap.length && worse(r, w)) w = r;
        if (w === i) break;
        swap(i, w);
        i = w;
      }
    }
  }
  return heap.sort(order).slice(offset, k);
}

/**
 * One copy of a frame's bytes for every outbound queue that must keep them:
 * an event fanned out to N slow receivers is held once, not N times. The
 * copy is made at the first queue that holds `buf[start, end)` and handed
 * to the others that ask for the same bytes (same memory, offset, length)
 * during the same task: fan-out is synchronous, and forgetting at the next
 * microtask means reused memory (a later input chunk, a new slab region)
 * can never be mistaken for bytes copied earlier. A copy, not a view:
 * nothing queued pins a whole input chunk (RELIABILITY.md, issue #13).
 */
let memoOf: ArrayBufferLike | undefined;
let memo: Map<number, Uint8Array> | undefined;

export function sharedCopy(buf: Uint8Array, start: number, end: number): Uint8Array {
  const ab = buf.buffer;
  const at = buf.byteOffset + start;
  const len = end - start;
  if (memo === undefined) {
    memo = new Map();
    queueMicrotask(forget);
  } else if (ab === memoOf) {
    const c = memo.get(at);
    if (c !== undefined && c.length === len) return c;
  } else memo.clear();
  memoOf = ab;
  const c = new Uint8Array(len);
  c.set(buf.subarray(start, end));
  memo.set(at, c);
  return c;
}

function forget(): void {
  memo = undefined;
  memoOf = undefined;
}

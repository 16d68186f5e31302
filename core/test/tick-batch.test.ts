import { describe, expect, it } from 'vitest';
import { TickBatch } from '../src/tick-batch.js';

function concat(chunks: Uint8Array[]): number[] {
  return chunks.flatMap((c) => [...c]);
}

describe('TickBatch', () => {
  it('joins views that follow each other in one buffer into one chunk, without copying', () => {
    const input = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const b = new TickBatch(() => {});
    b.add(input.subarray(0, 10));
    b.add(input.subarray(10, 30));
    b.add(input.subarray(30, 31));
    expect(b.count).toBe(1);
    expect(b.bytes).toBe(31);
    const out = b.take();
    expect(out).toHaveLength(1);
    expect(out[0]!.buffer).toBe(input.buffer);
    expect(concat(out)).toEqual([...input.subarray(0, 31)]);
    expect(b.count).toBe(0);
    expect(b.bytes).toBe(0);
  });

  it('keeps gaps, other buffers and repeated views as separate chunks, in order', () => {
    const input = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const other = new Uint8Array([200, 201, 202]);
    const b = new TickBatch(() => {});
    b.add(input.subarray(0, 10));
    b.add(input.subarray(20, 30)); // gap: frames 10..20 went elsewhere
    b.add(other);
    b.add(input.subarray(30, 40)); // contiguous with an earlier chunk, but not the last one
    b.add(input.subarray(30, 40)); // the same bytes again (not contiguous with itself)
    const out = b.take();
    expect(out.map((c) => c.length)).toEqual([10, 10, 3, 10, 10]);
    expect(concat(out)).toEqual([...input.subarray(0, 10), ...input.subarray(20, 30), 200, 201, 202, ...input.subarray(30, 40), ...input.subarray(30, 40)]);
  });

  it('fires once per tick, or at once past maxBytes', async () => {
    let fired = 0;
    const b = new TickBatch(() => fired++, 8);
    const input = new Uint8Array(32);
    b.add(input.subarray(0, 4));
    b.add(input.subarray(4, 6));
    expect(fired).toBe(0);
    b.add(input.subarray(6, 9));
    expect(fired).toBe(1);
    expect(b.take().map((c) => c.length)).toEqual([9]);
    await new Promise((r) => process.nextTick(r));
    expect(fired).toBe(2);
  });
});

describe('TickBatch.addRange', () => {
  it('joins ranges of one array, and ranges with views of the same memory, into one view', () => {
    const input = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
    const b = new TickBatch(() => {});
    b.addRange(input, 0, 10);
    b.addRange(input, 10, 25);
    b.add(input.subarray(25, 30)); // a view right after the ranges
    b.addRange(input, 30, 40); // a range right after the view
    expect(b.count).toBe(1);
    expect(b.bytes).toBe(40);
    const out = b.take();
    expect(out).toHaveLength(1);
    expect(out[0]!.buffer).toBe(input.buffer);
    expect(concat(out)).toEqual([...input.subarray(0, 40)]);
  });

  it('keeps gaps and other arrays apart, in order, with the same bytes as views would give', () => {
    const a = Buffer.from(Array.from({ length: 64 }, (_, i) => i));
    const inner = a.subarray(8, 48); // a view with a byteOffset: ranges are relative to it
    const other = Buffer.from([200, 201]);
    const b = new TickBatch(() => {});
    b.addRange(inner, 0, 4);
    b.addRange(inner, 6, 10);
    b.addRange(other, 0, 2);
    b.addRange(inner, 10, 12);
    b.addRange(inner, 12, 20);
    const out = b.take();
    expect(out.map((c) => c.length)).toEqual([4, 4, 2, 10]);
    expect(concat(out)).toEqual([...inner.subarray(0, 4), ...inner.subarray(6, 10), 200, 201, ...inner.subarray(10, 20)]);
  });
});

/**
 * Client subscriptions are bounded per node, not only per connection
 * (maxNodeSubscriptions, default 1,000,000). Per connection alone, one host's
 * 1,024 connections × 10,000 subscriptions could hold 10 million: measured
 * here at about 1 KB of heap each with a 200-byte pattern (100,000 took
 * +106 MB), some 10 GB, far past the heap a node process has.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { RawClient } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const refusals = (c: RawClient): number[] => c.got.filter((g) => g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS').map((g) => g.correlation);

describe('subscriptions per node', () => {
  it('past maxNodeSubscriptions a SUB is refused (non-fatal) whichever connection sends it; room comes back as subscriptions end', async () => {
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, maxSubscriptions: 30, maxNodeSubscriptions: 50 });
    cleanup.push(() => n.close());
    const a = await RawClient.connect(n.port);
    const b = await RawClient.connect(n.port);
    cleanup.push(() => b.close());
    for (let i = 1; i <= 30; i++) a.sub(`a.${i}`, i);
    await a.flush();
    for (let i = 1; i <= 30; i++) b.sub(`b.${i}`, i);
    await b.flush();
    expect(refusals(a)).toEqual([]);
    expect(refusals(b)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(n.table.clientSubscriptions).toBe(50);
    // Replacing a subscription (same sid) takes no new room; the connection stays open.
    b.sub('b.other', 1);
    await b.flush();
    expect(refusals(b)).toHaveLength(10);
    // a leaves: its 30 are room again.
    a.close();
    await a.waitClosed();
    await (async () => {
      for (let k = 0; k < 200 && n.table.clientSubscriptions !== 20; k++) await new Promise((r) => setTimeout(r, 10));
    })();
    expect(n.table.clientSubscriptions).toBe(20);
    b.sub('b.again', 99);
    await b.flush();
    expect(refusals(b)).toHaveLength(10);
    expect(b.got.some((g) => g.type === FrameType.ERROR && g.error !== 'MB_ERR_TOO_MANY_SUBSCRIPTIONS')).toBe(false);
  });
});

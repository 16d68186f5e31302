/**
 * Client subscriptions are bounded per node, not only per connection
 * (maxNodeSubscriptions, default 1,000,000). Per connection alone, one host's
 * 1,024 connections × 10,000 subscriptions could hold 10 million: measured
 * here at about 1 KB of heap each with a 200-byte pattern (100,000 took
 * +106 MB), some 10 GB, far past the heap a node process has.
 */
import { describe, expect, it } from 'vitest';
import { FrameType, decodeError } from '@meshbus/proto';
import { RawClient, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';

const cleanup = cleanups();

const refusals = (c: RawClient): number[] => c.got.filter((g) => g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS').map((g) => g.correlation);

describe('subscriptions per node', () => {
  it('past maxNodeSubscriptions a SUB is refused (non-fatal) whichever connection sends it; room comes back as subscriptions end', async () => {
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, maxSubscriptions: 30, maxNodeSubscriptions: 50, maxSubscriptionsPerIp: 50 });
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
    expect(n.stats.subscriptionsRefused).toEqual({ connection: 0, node: 10, host: 0 });
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

  it('one host cannot take the node\'s whole bound: past maxSubscriptionsPerIp its SUBs are refused, another host still subscribes', async () => {
    // Before: only the node-wide bound: one host's connections took all 1,000,000 and every other client's SUB was refused.
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, maxSubscriptions: 30, maxNodeSubscriptions: 100, maxSubscriptionsPerIp: 40 });
    cleanup.push(() => n.close());
    const a1 = await RawClient.connect(n.port);
    const a2 = await RawClient.connect(n.port);
    const other = await RawClient.connect(n.port, {}, '127.0.0.2');
    cleanup.push(() => a1.close(), () => a2.close(), () => other.close());
    for (let i = 1; i <= 30; i++) a1.sub(`a1.${i}`, i);
    await a1.flush();
    for (let i = 1; i <= 30; i++) a2.sub(`a2.${i}`, i);
    await a2.flush();
    expect(refusals(a1)).toEqual([]);
    expect(refusals(a2)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
    expect(decodeError(a2.got.find((g) => g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS')!.payload).message).toMatch(/40 per host/);
    for (let i = 1; i <= 30; i++) other.sub(`o.${i}`, i);
    await other.flush();
    expect(refusals(other)).toEqual([]);
    expect(n.table.hostSubscriptions('127.0.0.1')).toBe(40);
    expect(n.table.hostSubscriptions('127.0.0.2')).toBe(30);
    // Counted by bound (meshbus_subscriptions_refused_total{bound}): an operator can tell which bound refused.
    expect(n.stats.subscriptionsRefused).toEqual({ connection: 0, node: 0, host: 20 });
    // The host's room comes back as its subscriptions end (UNSUB, then a closed connection).
    a1.send({ type: FrameType.UNSUB, correlation: 1 });
    a2.sub('a2.back', 50);
    await a2.flush();
    expect(refusals(a2)).not.toContain(50);
    a1.close();
    await a1.waitClosed();
    for (let k = 0; k < 200 && n.table.hostSubscriptions('127.0.0.1') !== 11; k++) await new Promise((r) => setTimeout(r, 10));
    expect(n.table.hostSubscriptions('127.0.0.1')).toBe(11);
    expect(a2.got.some((g) => g.type === FrameType.ERROR && g.error !== 'MB_ERR_TOO_MANY_SUBSCRIPTIONS')).toBe(false);
  });

  it('the per-host bound defaults to a quarter of the node\'s', async () => {
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, maxNodeSubscriptions: 1000 });
    cleanup.push(() => n.close());
    expect(n.options.maxSubscriptionsPerIp).toBe(250);
    const d: MeshNode = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => d.close());
    expect(d.options.maxSubscriptionsPerIp).toBe(250_000);
  });
});

/**
 * Subscription limits count weight, not subscriptions (SPEC 10.10 "How
 * subscriptions are counted"). Before, one SUB of a 32-token pattern with a
 * 256-character queue name cost the node ~9.4 KB (a trie node and a Map per
 * token, the interest key, the queue map) and counted 1 against limits
 * documented as ~1 KB each: one host's 250,000 held ~2.2 GB, and a node with
 * a 256 MB heap died at 12 % of its per-host limit. Now each SUB weighs
 * about what it costs, the limits bound the weight, and the node reports it.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { decodeError } from '@meshbus/proto';
import { RawClient, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../src/index.js';
import { startHttp } from '../src/http/index.js';

const cleanup = cleanups();

const refusals = (c: RawClient): number[] => c.got.filter((g) => g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS').map((g) => g.correlation);

/** A pattern of `tokens` distinct 7-character tokens (the most a 256-byte topic holds: 32). */
const deep = (i: number, tokens = 32): string => Array.from({ length: tokens }, (_, t) => `${i.toString(36)}${t.toString(36)}abcdef`.slice(0, 7)).join('.');
const queue256 = (i: number): string => (i.toString(36) + 'Q'.repeat(256)).slice(0, 256);

v8.setFlagsFromString('--expose-gc');
const gc = ((globalThis as { gc?: () => void }).gc ?? (vm.runInNewContext('gc') as () => void));
const heapUsed = (): number => {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
};

/** The weight the node reports for its clients' subscriptions (undefined on a node that counts them only). */
const clientWeight = (n: MeshNode): number | undefined => (n.table as unknown as { clientWeight?: number }).clientWeight;

describe('subscription weight', () => {
  it('a connection\'s deep subscriptions are refused past maxSubscriptions by weight, with the usual code; short ones still count 1', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, maxSubscriptions: 60, maxNodeSubscriptions: 1000, maxSubscriptionsPerIp: 1000 });
    cleanup.push(() => n.close());
    const c = await RawClient.connect(n.port);
    cleanup.push(() => c.close());
    for (let i = 1; i <= 60; i++) c.sub(deep(i), i);
    await c.flush();
    const refused = refusals(c);
    // A 32-token pattern weighs 6: 10 fit in 60, the 50 others are refused, each on its sid, the connection stays open.
    expect(refused.length).toBe(50);
    expect(refused[0]).toBe(11);
    expect(decodeError(c.got.find((g) => g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS')!.payload).message).toMatch(/limit 60.*weighs 6/);
    expect(n.stats.subscriptionsRefused.connection).toBe(50);
    expect(clientWeight(n)).toBe(60);
    expect(n.table.clientSubscriptions).toBe(10);
    // A short pattern weighs 1: none fits now, one fits once a deep one ends, and six once it is replaced by a short one.
    c.sub('a.b', 100);
    await c.flush();
    expect(refusals(c)).toContain(100);
    c.sub('short.one', 1); // replaces sid 1 (weight 6) with weight 1
    for (let i = 101; i <= 105; i++) c.sub(`s.${i}`, i);
    await c.flush();
    expect(refusals(c).filter((s) => s > 100)).toEqual([]);
    expect(clientWeight(n)).toBe(60);
    // A replacement by a heavier pattern needs the difference: refused now.
    c.sub(deep(500), 101);
    await c.flush();
    expect(refusals(c)).toContain(101);
    expect(c.got.some((g) => g.error !== undefined && g.error !== 'MB_ERR_TOO_MANY_SUBSCRIPTIONS')).toBe(false);
  });

  it('the node and host bounds count weight too: queue names add to it', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, maxSubscriptions: 1000, maxNodeSubscriptions: 200, maxSubscriptionsPerIp: 110 });
    cleanup.push(() => n.close());
    const a = await RawClient.connect(n.port);
    const other = await RawClient.connect(n.port, {}, '127.0.0.2');
    cleanup.push(() => a.close(), () => other.close());
    // 32 tokens + a 256-character queue name: weighs 7. 15 fit in the host's 110.
    for (let i = 1; i <= 30; i++) a.sub(deep(i), i, { q: queue256(i) });
    await a.flush();
    expect(refusals(a)).toHaveLength(15);
    expect(decodeError(a.got.find((g) => g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS')!.payload).message).toMatch(/110 per host.*weighs 7/);
    expect(n.stats.subscriptionsRefused.host).toBe(15);
    for (let i = 1; i <= 30; i++) other.sub(deep(i + 1000), i);
    await other.flush();
    // The node's 200: 105 taken by the first host, 95 left: 15 of weight 6.
    expect(refusals(other)).toHaveLength(15);
    expect(n.stats.subscriptionsRefused.node).toBe(15);
    expect(clientWeight(n)).toBe(105 + 90);
  });

  it('the heap a client makes the node hold stays within ~1.6 KB per unit of the weight the node reports', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, maxSubscriptions: 1_000_000, maxNodeSubscriptions: 1_000_000, maxSubscriptionsPerIp: 1_000_000 });
    cleanup.push(() => n.close());
    for (const shape of ['plain', 'deep', 'deep+queue'] as const) {
      const before = heapUsed();
      const w0 = clientWeight(n) ?? n.table.clientSubscriptions;
      const c = await RawClient.connect(n.port);
      const N = 3000;
      for (let i = 1; i <= N; i++) {
        const pattern = shape === 'plain' ? `p.${i}.x` : deep(i);
        c.sub(pattern, i, shape === 'deep+queue' ? { q: queue256(i) } : {});
        if (i % 500 === 0) await c.flush();
      }
      await c.flush();
      expect(refusals(c)).toEqual([]);
      const held = heapUsed() - before;
      const reported = (clientWeight(n) ?? n.table.clientSubscriptions) - w0;
      // Measured: ~0.9 KB per unit for short patterns, ~1.5 for 32 tokens (+queue); before, 8.7 and 9.4 KB per counted subscription.
      expect(held / reported, `${shape}: ${held} B held for ${reported} reported`).toBeLessThan(1700);
      c.close();
      await c.waitClosed();
      for (let k = 0; k < 200 && n.table.clientSubscriptions !== 0; k++) await new Promise((r) => setTimeout(r, 10));
    }
  }, 60_000);

  it('GET /v1/node and /metrics show the weight the limits count beside the count', async () => {
    const n = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => n.close());
    const http = await startHttp(n, { port: 0, host: '127.0.0.1' });
    cleanup.push(() => http.close());
    const c = await RawClient.connect(n.port);
    cleanup.push(() => c.close());
    c.sub(deep(1), 1); // 32 tokens: weight 6
    c.sub('a.b', 2); // weight 1
    await c.flush();
    const node = (await (await fetch(`http://127.0.0.1:${http.port}/v1/node`)).json()) as { subscriptions: number; subscriptionWeight?: number };
    expect({ subscriptions: node.subscriptions, subscriptionWeight: node.subscriptionWeight }).toEqual({ subscriptions: 2, subscriptionWeight: 7 });
    const text = await (await fetch(`http://127.0.0.1:${http.port}/metrics`)).text();
    expect(text).toMatch(/^meshbus_subscription_weight\{owner="client"\} 7$/m);
  });
});

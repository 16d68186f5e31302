/**
 * The node's and one host's subscription bounds (maxNodeSubscriptions,
 * maxSubscriptionsPerIp) count what is in the routing table. A durable queue
 * member (SUB `durable`) is not (it is fed by its queue's worker): a SUB that
 * replaces it under the same sid by an ordinary one adds a subscription to
 * the table, and must meet both bounds like a new one.
 */
import { describe, expect, it } from 'vitest';
import { RawClient, durableSuite } from '@meshbus/testkit';
import { startNode } from '../../src/index.js';

const suite = durableSuite({ start: startNode });

const refusals = (c: RawClient): number[] => c.got.filter((g) => g.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS').map((g) => g.correlation);

describe('subscription bounds and durable queue members', () => {
  it.each([
    { bound: 'per host', maxNodeSubscriptions: 100, maxSubscriptionsPerIp: 5 },
    { bound: 'per node', maxNodeSubscriptions: 5, maxSubscriptionsPerIp: 100 },
  ])('an ordinary SUB replacing a durable queue member (same sid) meets the bound $bound', async ({ maxNodeSubscriptions, maxSubscriptionsPerIp }) => {
    // Before: a replacement was never checked (`!old`), although the old one, detached, held no room in the table:
    // SUB durable then SUB plain on the same sid, over and over, took the host past maxSubscriptionsPerIp (and the node
    // past maxNodeSubscriptions), one unchecked subscription a pair.
    const n = await suite.node({ maxSubscriptions: 100, maxNodeSubscriptions, maxSubscriptionsPerIp, durable: { redis: suite.redis().url, prefix: suite.prefix() } });
    const c = await RawClient.connect(n.port);
    try {
      // Ten durable queue members while the host has room (they take none in the table), then the host's five.
      for (let sid = 10; sid < 20; sid++) c.sub('work.>', sid, { q: 'w', durable: true });
      for (let sid = 1; sid <= 5; sid++) c.sub(`plain.${sid}`, sid);
      await c.flush();
      expect(refusals(c)).toEqual([]);
      expect(n.table.hostSubscriptions('127.0.0.1')).toBe(5);
      // Each member replaced by an ordinary subscription: ten more in the table, past the host's bound.
      for (let sid = 10; sid < 20; sid++) c.sub(`more.${sid}`, sid);
      await c.flush();
      expect(refusals(c)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
      expect(n.table.hostSubscriptions('127.0.0.1')).toBe(5);
      expect(n.table.clientSubscriptions).toBe(5);
      // Replacing an ordinary subscription by another still takes no new room at the bound.
      c.sub('plain.again', 1);
      await c.flush();
      expect(refusals(c)).toHaveLength(10);
      expect(n.table.hostSubscriptions('127.0.0.1')).toBe(5);
      // A new durable queue member takes no room in the table: bounded by the durable limits, not these.
      c.sub('work.>', 30, { q: 'w', durable: true });
      await c.flush();
      expect(refusals(c)).toHaveLength(10);
      expect(n.table.clientSubscriptions).toBe(5);
    } finally {
      c.close();
    }
  }, 20_000);
});

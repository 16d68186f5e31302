import { describe, expect, it, vi } from 'vitest';
import { nodeKit, sleep, until } from '@meshbus/testkit';
import { FrameType } from '@meshbus/proto';
import { startNode } from '../../src/index.js';
import { parseProm, nodeWithHttp } from '../http-helpers.js';

/**
 * GET /metrics answers anyone (no admin token). What one unauthenticated
 * caller can make the node spend through it must not grow with its request
 * rate nor with the node's subscriptions.
 */

const kit = nodeKit({ start: startNode });

describe('the cost of an open /metrics', () => {
  it('a scrape walks no subscription: the table counts them by owner as they come and go', async () => {
    const { node, http } = await nodeWithHttp(kit, {}, { adminToken: 'admin-secret', metricsMinInterval: 0 });
    const c = await kit.raw(node);
    for (let i = 1; i <= 3; i++) c.sub(`cost.${i}.>`, i);
    await c.flush();
    const walk = vi.spyOn(node.table, 'forEach');
    const scrape = async () => parseProm(await (await fetch(`${http.url}/metrics`)).text());
    expect((await scrape()).get('meshbus_subscriptions', { owner: 'client' })).toBe(3);
    c.send({ type: FrameType.UNSUB, topic: '', correlation: 2, payload: new Uint8Array(0) });
    await c.flush();
    expect((await scrape()).get('meshbus_subscriptions', { owner: 'client' })).toBe(2);
    c.close();
    await until(async () => (await scrape()).get('meshbus_subscriptions', { owner: 'client' }) === 0, 'subscriptions of the closed client gone', 5000);
    // Walking the trie cost ~27 ms of event loop per scrape at 100,000 subscriptions.
    expect(walk).not.toHaveBeenCalled();
  });

  it('scrapes in a loop render at most once per metricsMinInterval, and one at a time', async () => {
    let renders = 0;
    const { http } = await nodeWithHttp(kit, {}, {
      adminToken: 'admin-secret',
      metricsMinInterval: 2000,
      metricsSource: async (own) => {
        renders++;
        return own.metrics();
      },
    });
    const get = async () => {
      const r = await fetch(`${http.url}/metrics`);
      expect(r.status).toBe(200);
      return r.text();
    };
    const t0 = Date.now();
    const first = await Promise.all(Array.from({ length: 30 }, get));
    for (let i = 0; i < 20; i++) expect(await get()).toBe(first[0]);
    // Within the interval: one rendering for 50 scrapes (before, 50).
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(renders).toBe(1);
    await sleep(2100);
    expect(await get()).toContain('meshbus_up 1');
    expect(renders).toBeLessThanOrEqual(3);
    expect(renders).toBeGreaterThanOrEqual(2);
  });
});

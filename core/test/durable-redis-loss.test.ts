import { expect, it } from 'vitest';
import { durableSuite, ownRedisServers, until } from '@meshbus/testkit';
import { startNode } from '../src/index.js';

/**
 * Redis restarted without persistence (or a failover that lost writes): the
 * set of durable queues is gone. Before: a node started afterwards never
 * learned a queue whose consumers were already online, so an acknowledged
 * publish through it was not enqueued for them (here: refused, the topic
 * being durable only through that queue).
 */
const suite = durableSuite({ start: startNode });
const { node, client } = suite;
const redis = ownRedisServers();

it('a queue whose consumers are online is known again to new nodes after Redis lost its data', async ({ skip }) => {
  const server = await redis.start({ skip });
  const cfg = { redis: server.url, prefix: 'loss:' };
  const a = await node({ durable: cfg });
  const c = await client(a);
  const got: string[] = [];
  c.subscribe('lost.>', { queue: 'g', durable: true, callback: (m) => void got.push(Buffer.from(m.data).toString()) });
  await until(() => (a.durability!.matcher.forTopic('lost.x')?.queues.length ?? 0) > 0, 'queue registered');
  await c.flush();
  await server.restart();
  await until(() => a.stats.store.redisUp === 1, 'node a reconnected');
  const b = await node({ durable: cfg });
  const pub = await client(b);
  const refusals: string[] = [];
  // Node b learns the queue once node a has written it back (its refresh, every 5 s).
  await until(async () => {
    try {
      await pub.publish('lost.x', 'after', { ack: true });
      return true;
    } catch (e) {
      refusals.push((e as { code?: string }).code ?? String(e));
      await new Promise((r) => setTimeout(r, 200));
      return false;
    }
  }, 'publish through node b acknowledged');
  expect(new Set(refusals).size <= 1).toBe(true);
  await until(() => got.includes('after'), 'job delivered to the consumer on node a');
}, 40_000);

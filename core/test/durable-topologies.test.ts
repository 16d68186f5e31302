import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { durabilityOf } from '../src/durable/index.js';
import { startNode } from '../src/index.js';
import { durableSuite, until, type TestRedis, redisCall, startRedisCluster, startSentinelSetup, topologyToolsInstalled, type Topology } from '@meshbus/testkit';
import { historyScenarios, queueScenarios } from './durable-scenarios.js';

/**
 * The durable scenarios of durable.test.ts and durable-queue.test.ts on a
 * 3-primary Redis Cluster and on a primary + replica behind 3 sentinels, each
 * started once for this file on loopback ports and killed after it.
 */

const setups: Array<[string, () => Promise<Topology>]> = [
  ['a Redis Cluster (redis-cluster://, 3 primaries)', startRedisCluster],
  ['a Sentinel setup (redis-sentinel://, primary + replica + 3 sentinels)', startSentinelSetup],
];

for (const [name, start] of setups) {
  describe(`durability on ${name}`, () => {
    let topo: Promise<Topology> | undefined;
    const provide = async (ctx: { skip(note?: string): void }): Promise<TestRedis> => {
      if (!topologyToolsInstalled()) {
        const reason = 'redis-server and redis-cli are not installed (apt-get install redis-server)';
        if (process.env.MESHBUS_REQUIRE_REDIS === '1') throw new Error(`MESHBUS_REQUIRE_REDIS=1 but ${reason}`);
        ctx.skip(reason);
      }
      topo ??= start();
      const t = await topo;
      return { url: t.url, prefix: `mbtest:${randomBytes(6).toString('hex')}:`, cleanup: async () => {} };
    };
    afterAll(async () => {
      await (await topo?.catch(() => undefined))?.stop();
    });
    const suite = durableSuite({ provide, start: startNode });
    historyScenarios(suite);
    queueScenarios(suite);

    it('latest values of topics on different shards come to one wildcard subscriber', async () => {
      const n = await suite.node({ durable: { redis: suite.redis().url, prefix: suite.prefix(), topics: [{ pattern: 'px.>', latest: true }] } });
      const pub = await suite.client(n);
      const topics = Array.from({ length: 24 }, (_, i) => `px.t${i}`);
      for (const t of topics) await pub.publish(t, `v-${t}`, { ack: true });
      const c = await suite.client(n);
      const got: string[] = [];
      c.subscribe('px.>', { callback: (m) => void got.push(`${m.topic}=${Buffer.from(m.data).toString()}`) });
      await until(() => got.length === topics.length, `latest of ${topics.length} topics (got ${got.length})`);
      expect(got.sort()).toEqual(topics.map((t) => `${t}=v-${t}`).sort());
      expect(durabilityOf(n)?.cfg.target.kind).toBe(name.includes('Cluster') ? 'cluster' : 'sentinel');
      if (name.includes('Cluster')) {
        // The topics' keys spread over the shards (hash tag = topic), not all in one slot.
        const ports = [...(await topo!).url.matchAll(/:(\d+)/g)].map((m) => Number(m[1]));
        const sizes = await Promise.all(ports.map(async (p) => Number(await redisCall(p, 'DBSIZE'))));
        expect(sizes.filter((k) => k > 0).length).toBeGreaterThanOrEqual(2);
      }
    });

    it.runIf(name.includes('Cluster'))('waitReplicas on shards without replicas: WAIT goes to the topic\'s primary, the event is stored and delivered, the ACK becomes a NACK', async () => {
      const prefix = suite.prefix();
      const ports = [...(await topo!).url.matchAll(/:(\d+)/g)].map((m) => Number(m[1]));
      await Promise.all(ports.map((p) => redisCall(p, 'CONFIG', 'RESETSTAT')));
      const n = await suite.node({ durable: { redis: suite.redis().url, prefix, topics: [{ pattern: 'w.>', history: { size: 10 } }], waitReplicas: 1, waitTimeoutMs: 100 } });
      const c = await suite.client(n);
      let got = 0;
      c.subscribe('w.>', { callback: () => void got++ });
      await c.flush();
      const errs: string[] = [];
      for (let i = 0; i < 6; i++) await c.publish('w.a', 'x', { ack: true }).catch((e: { code: string; message: string }) => void errs.push(`${e.code} ${e.message}`));
      expect(errs).toHaveLength(6);
      for (const e of errs) expect(e).toMatch(/^MB_ERR_STORE_UNAVAILABLE .*confirmed by 0 of 1 replicas/);
      await until(() => got === 6, 'deliveries');
      const d = durabilityOf(n)!;
      expect((await d.historyStore.read('w.a', d.cfg.topics[0]!, { epoch: '', offset: 0 })).top).toBe(6);
      // WAIT counts the writes of its own connection: it must run on the topic's primary and only
      // there (a keyless WAIT would go to a random primary and confirm nothing).
      const waits = await Promise.all(ports.map(async (p) => Number(/cmdstat_wait:calls=(\d+)/.exec(String(await redisCall(p, 'INFO', 'commandstats')))?.[1] ?? 0)));
      const owner = await Promise.all(ports.map(async (p) => (await redisCall(p, 'EXISTS', `${prefix}m:{w.a}`).catch(() => 0)) === 1));
      expect(owner.filter(Boolean)).toHaveLength(1);
      expect(waits.map((w, i) => (owner[i] ? w >= 6 : w === 0))).toEqual([true, true, true]);
    });

    // Replayed from the Redis Cluster hash tag rule that keys with braces meet (an empty tag `{}` hashes the whole key).
    it('topics that start with } are stored and read back (their two keys fell in two slots: CROSSSLOT, MB_ERR_STORE_UNAVAILABLE on every publish)', async () => {
      const n = await suite.node({ durable: { redis: suite.redis().url, prefix: suite.prefix(), topics: [{ pattern: '>', history: { size: 10 } }] } });
      const pub = await suite.client(n);
      const topics = ['}', '}a', '}{', '}.x', 'a}', '{}'];
      const epochs = new Map<string, string>();
      for (const t of topics) {
        const p = await pub.publish(t, `v${t}`, { ack: true });
        expect(p).toMatchObject({ offset: 1 });
        epochs.set(t, p!.epoch);
      }
      const c = await suite.client(n);
      const got: string[] = [];
      for (const t of topics) c.subscribe(t, { since: { epoch: epochs.get(t)!, offset: 0 }, callback: (m) => void got.push(`${m.topic}=${Buffer.from(m.data).toString()}`) });
      await until(() => got.length === topics.length, `history of ${topics.length} topics (got ${got.length})`);
      expect(got.sort()).toEqual(topics.map((t) => `${t}=v${t}`).sort());
    });
  });
}

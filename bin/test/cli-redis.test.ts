import { afterAll, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { connect } from '@meshbus/sdk';
import { loadStartConfig, parseDurableTopic } from '../src/config.js';
import { spawnCli, until, type CliProcess, redisCall, startSentinelSetup, topologyToolsInstalled, type SentinelTopology } from '@meshbus/testkit';

it('--redis-wait-replicas and MESHBUS_REDIS_WAIT_REPLICAS set durable.waitReplicas', () => {
  expect(loadStartConfig({ 'redis-wait-replicas': '1' }, {}).redisWaitReplicas).toBe(1);
  expect(loadStartConfig({}, { MESHBUS_REDIS_WAIT_REPLICAS: '2' }).redisWaitReplicas).toBe(2);
  expect(loadStartConfig({}, {}).redisWaitReplicas).toBeUndefined();
  expect(() => loadStartConfig({ 'redis-wait-replicas': 'all' }, {})).toThrow(/redis-wait-replicas/);
});

it('store quotas: --durable rule option topics=N, --durable-max-event-bytes, --durable-delayed-events, MESHBUS_DURABLE_DELAYED_BYTES', () => {
  expect(parseDurableTopic('orders.>|history=100|topics=500')).toEqual({ pattern: 'orders.>', history: { size: 100 }, maxTopics: 500 });
  const c = loadStartConfig({ 'durable-max-event-bytes': '65536', 'durable-delayed-events': '100' }, { MESHBUS_DURABLE_DELAYED_BYTES: '1048576' });
  expect([c.durableMaxEventBytes, c.durableDelayedEvents, c.durableDelayedBytes]).toEqual([65536, 100, 1048576]);
  expect(() => loadStartConfig({ 'durable-delayed-events': 'many' }, {})).toThrow(/durable-delayed-events/);
});

let topo: SentinelTopology | undefined;
let node: CliProcess | undefined;
afterAll(async () => {
  node?.child.kill('SIGTERM');
  await node?.exited;
  await topo?.stop();
});

it('meshbus start --redis redis-sentinel://…/mymaster --redis-wait-replicas 1: durable publishes are acked with their position', async (ctx) => {
  if (!topologyToolsInstalled()) {
    if (process.env.MESHBUS_REQUIRE_REDIS === '1') throw new Error('MESHBUS_REQUIRE_REDIS=1 but redis-server/redis-cli are not installed');
    ctx.skip('redis-server and redis-cli are not installed');
  }
  topo = await startSentinelSetup();
  const port = await freePort();
  node = spawnCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info', '--redis', topo.url, '--redis-wait-replicas', '1', '--durable', 'cli.>|history=100']);
  await until(() => node!.err().includes('durability on'), 'durability on');
  const c = await connect(`127.0.0.1:${port}`);
  try {
    const p1 = await c.publish('cli.a', 'one', { ack: true });
    const p2 = await c.publish('cli.a', 'two', { ack: true });
    expect(p2).toEqual({ epoch: p1!.epoch, offset: p1!.offset + 1 });
    // The ACKs waited for the replica: the primary ran WAIT.
    const stats = String(await redisCall(await topo.primaryPort(), 'INFO', 'commandstats'));
    expect(Number(/cmdstat_wait:calls=(\d+)/.exec(stats)?.[1] ?? 0)).toBeGreaterThanOrEqual(2);
  } finally {
    await c.close();
  }
}, 60_000);

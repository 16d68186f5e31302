import { expect, it } from 'vitest';
import { startHttp } from '../src/http/index.js';
import { parseProm } from './http-helpers.js';
import { durableSuite, promtoolCheck } from '@meshbus/testkit';

/**
 * Issue 16: Redis/durability health and durable write latency in /metrics,
 * on a node with real Redis; the exposition still passes promtool.
 */

const suite = durableSuite();

it('a durable node exports Redis health and the durable write histogram', async (ctx) => {
  const n = await suite.node({ durable: { redis: suite.redis().url, prefix: suite.prefix(), topics: [{ pattern: 'hist.>', history: { size: 100 } }] } });
  const http = await startHttp(n, { port: 0, host: '127.0.0.1' });
  try {
    const pub = await suite.client(n);
    for (let i = 0; i < 3; i++) await pub.publish('hist.a', String(i), { ack: true });
    const text = await (await fetch(`${http.url}/metrics`)).text();
    const m = parseProm(text);
    expect(m.get('meshbus_store_redis_up')).toBe(1);
    expect(m.get('meshbus_store_writes_pending')).toBe(0);
    expect(m.get('meshbus_store_write_seconds_count')).toBe(3);
    expect(m.get('meshbus_store_write_seconds_sum')).toBeGreaterThan(0);
    const check = promtoolCheck(ctx, text);
    expect(check.out).toBe('');
    expect(check.code).toBe(0);
  } finally {
    await http.close();
  }
});

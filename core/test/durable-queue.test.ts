import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Position } from '@meshbus/proto';
import { durableSuite, type RedisServer, requireRedisServer, startRedisServer, until } from '@meshbus/testkit';
import { startNode, type NodeOptions } from '../src/index.js';
import { queueScenarios } from './durable-scenarios.js';

const suite = durableSuite({ start: startNode });
const { node, client } = suite;

function durable(extra: Partial<NonNullable<NodeOptions['durable']>> = {}, url = suite.redis().url): NodeOptions['durable'] {
  return { redis: url, prefix: suite.prefix(), ...extra };
}

queueScenarios(suite);

describe('Redis restarted during publishing', () => {
  let server: RedisServer | undefined;
  let dir = '';
  afterEach(async () => {
    await server?.stop();
    server = undefined;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('acknowledged publishes are not lost; the others are reported failed to the publisher', async ({ skip }) => {
    requireRedisServer({ skip });
    dir = mkdtempSync(join(tmpdir(), 'mb-redis-'));
    // The guarantee needs persistence: AOF with fsync on every write.
    server = await startRedisServer(['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always']);
    const n = await node({ durable: durable({ topics: [{ pattern: 'ledger.>', history: { size: 100_000 } }], writeTimeoutMs: 1000 }, server.url) });
    const pub = await client(n);
    const acked = new Map<string, Position>();
    const failed: string[] = [];
    const N = 400;
    let restarted: Promise<void> | undefined;
    for (let i = 1; i <= N; i++) {
      const body = `tx${i}`;
      const p = pub.publish('ledger.main', body, { ack: true }).then(
        (pos) => void acked.set(body, pos!),
        (e: { code?: string }) => {
          expect(e.code).toBe('MB_ERR_STORE_UNAVAILABLE');
          failed.push(body);
        },
      );
      if (i === 150) restarted = server.restart();
      if (i % 10 === 0) await p;
      await new Promise((r) => setTimeout(r, 2));
    }
    await restarted;
    await until(() => acked.size + failed.length === N, `every publish answered (${acked.size} + ${failed.length})`);
    expect(failed.length).toBeGreaterThan(0);
    expect(acked.size).toBeGreaterThan(100);
    // Everything acknowledged is in the history after the restart, at the offset it was acked with.
    await until(() => n.durability!.historyStore !== undefined, 'store');
    let r;
    for (let k = 0; ; k++) {
      try {
        const any = [...acked.values()][0]!;
        r = await n.durability!.historyStore.read('ledger.main', n.durability!.cfg.topics[0]!, { epoch: any.epoch, offset: 0 });
        break;
      } catch (e) {
        if (k > 50) throw e;
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    expect(r.recovered).toBe(true);
    // History reads are paged: read on until the top.
    const events = [...r.events];
    while (events.length > 0 && events[events.length - 1]!.offset < r.top) {
      const next = await n.durability!.historyStore.read('ledger.main', n.durability!.cfg.topics[0]!, { epoch: r.epoch, offset: events[events.length - 1]!.offset });
      if (next.events.length === 0) break;
      events.push(...next.events);
    }
    const stored = new Map(events.map((e) => [e.offset, Buffer.from(e.frame.subarray(e.frame.length - 8)).toString().replace(/^.*tx/, 'tx')]));
    for (const [body, pos] of acked) {
      expect(pos.epoch).toBe([...acked.values()][0]!.epoch);
      expect(stored.get(pos.offset)).toBe(body);
    }
  }, 60_000);
});

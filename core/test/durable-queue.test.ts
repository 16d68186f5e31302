import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Msg } from '@meshbus/sdk';
import type { Position } from '@meshbus/proto';
import { durableSuite, type RedisServer, requireRedisServer, startRedisServer, until } from '@meshbus/testkit';
import { startNode, type MeshNode, type NodeOptions } from '../src/index.js';

const suite = durableSuite({ start: startNode });
const { node, client } = suite;

function durable(extra: Partial<NonNullable<NodeOptions['durable']>> = {}, url = suite.redis().url): NodeOptions['durable'] {
  return { redis: url, prefix: suite.prefix(), ...extra };
}
const text = (m: Msg): string => Buffer.from(m.data).toString();
const queued = (n: MeshNode, topic: string): boolean => (n.durability!.matcher.forTopic(topic)?.queues.length ?? 0) > 0;

describe('durable work queues (BullMQ)', () => {
  it('each job goes to one consumer and is acked when the handler returns', async () => {
    const n = await node({ durable: durable() });
    const a = await client(n);
    const b = await client(n);
    const got: string[] = [];
    for (const c of [a, b]) c.subscribe('work.>', { queue: 'w', durable: true, callback: (m) => void got.push(text(m)) });
    await until(() => queued(n, 'work.x'), 'queue registered');
    const pub = await client(n);
    for (let i = 0; i < 40; i++) await pub.publish('work.x', `j${i}`, { ack: true });
    await until(() => got.length >= 40, `40 jobs (got ${got.length})`);
    await new Promise((r) => setTimeout(r, 300));
    expect(got.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `j${i}`).sort());
    await until(async () => (await n.durability!.backlog('work.>', 'w')) === 0, 'backlog empty');
  });

  it('a throwing handler: retried with backoff, then moved to the dead-letter queue and _DLQ.<group>', async () => {
    const n = await node({ durable: durable({ queues: { attempts: 3, backoffMs: 20 } }) });
    const c = await client(n);
    let calls = 0;
    c.subscribe('crash.>', {
      queue: 'crashers',
      durable: true,
      callback: () => {
        calls++;
        throw new Error('boom');
      },
    });
    const dead: Msg[] = [];
    const watcher = await client(n);
    watcher.subscribe('_DLQ.crashers', { callback: (m) => void dead.push(m) });
    await watcher.flush();
    await until(() => queued(n, 'crash.a'), 'queue registered');
    const pub = await client(n);
    await pub.publish('crash.a', 'payload-1', { ack: true });
    await until(() => dead.length === 1, 'dead letter');
    expect(calls).toBe(3);
    expect(text(dead[0]!)).toBe('payload-1');
    expect(dead[0]!.headers).toMatchObject({ 'mb-topic': 'crash.a', 'mb-error': 'boom' });
    const dlq = await n.durability!.deadLetters('crashers');
    expect(dlq).toHaveLength(1);
    expect(dlq[0]).toMatchObject({ topic: 'crash.a', error: 'boom', attempts: 3 });
  });

  it('a handler that fails once succeeds on the retry (async handler, rejection = NACK)', async () => {
    const n = await node({ durable: durable({ queues: { attempts: 5, backoffMs: 10 } }) });
    const c = await client(n);
    const seen: string[] = [];
    c.subscribe('retry.>', {
      queue: 'r',
      durable: true,
      callback: async (m) => {
        seen.push(text(m));
        await new Promise((r) => setTimeout(r, 5));
        if (seen.length === 1) throw new Error('transient');
      },
    });
    await until(() => queued(n, 'retry.a'), 'queue registered');
    const pub = await client(n);
    await pub.publish('retry.a', 'once', { ack: true });
    await until(() => seen.length === 2, 'retry');
    await until(async () => (await n.durability!.backlog('retry.>', 'r')) === 0, 'job completed');
    expect(seen).toEqual(['once', 'once']);
    expect(await n.durability!.deadLetters('r')).toHaveLength(0);
  });

  it('jobs are kept while no consumer is online', async () => {
    const n = await node({ durable: durable() });
    const first = await client(n);
    first.subscribe('keep.>', { queue: 'k', durable: true, callback: () => {} });
    await until(() => queued(n, 'keep.a'), 'queue registered');
    await first.flush();
    await first.close();
    const pub = await client(n);
    for (let i = 0; i < 5; i++) await pub.publish('keep.a', `k${i}`, { ack: true });
    expect(await n.durability!.backlog('keep.>', 'k')).toBe(5);
    const later = await client(n);
    const got: string[] = [];
    later.subscribe('keep.>', { queue: 'k', durable: true, callback: (m) => void got.push(text(m)) });
    await until(() => got.length === 5, 'backlog delivered');
    expect(got).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
  });

  it('delayed publish: delivered after the delay', async () => {
    const n = await node({ durable: durable({ topics: [{ pattern: 'later.>' }] }) });
    const c = await client(n);
    const got: Array<{ t: number; m: string }> = [];
    c.subscribe('later.>', { callback: (m) => void got.push({ t: Date.now(), m: text(m) }) });
    await c.flush();
    const t0 = Date.now();
    await c.publish('later.x', 'wake', { ack: true, delay: 400 });
    await until(() => got.length === 1, 'delayed event');
    expect(got[0]!.m).toBe('wake');
    expect(got[0]!.t - t0).toBeGreaterThanOrEqual(350);
  });
});

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

import { describe, expect, it } from 'vitest';
import type { Client, Msg, Status } from '@meshbus/sdk';
import { Frame, type Position } from '@meshbus/proto';
import type { MeshNode, NodeOptions } from '../src/index.js';
import { startHttp } from '../src/http/index.js';
import { until, type durableSuite } from '@meshbus/testkit';

/**
 * The durable scenarios, written once and run against every Redis deployment:
 * one server (durable.test.ts, durable-queue.test.ts), a Redis Cluster and a
 * Sentinel setup (durable-topologies.test.ts). `suite` is that file's
 * durableSuite() (its Redis, nodes and clients).
 */
type Suite = ReturnType<typeof durableSuite>;

const text = (m: Msg): string => Buffer.from(m.data).toString();

/** Drops the node side of `c`'s connection (the client sees a lost connection and reconnects). */
function kill(n: MeshNode, c: Client): void {
  const id = c.info?.client;
  for (const s of n.connections()) if (s.clientId === id) s.transport.destroy();
}

/** History, recovery and latest values. */
export function historyScenarios(suite: Suite): void {
  const { node, client } = suite;
  function durable(topics: NonNullable<NodeOptions['durable']>['topics'], extra: Partial<NonNullable<NodeOptions['durable']>> = {}): NodeOptions['durable'] {
    return { redis: suite.redis().url, prefix: suite.prefix(), topics, ...extra };
  }
  describe('durable topics: history and recovery', () => {
    it('acks a durable publish with its position once Redis has it', async () => {
      const n = await node({ durable: durable([{ pattern: 'hist.>', history: { size: 100 } }]) });
      const pub = await client(n);
      const p1 = await pub.publish('hist.a', 'one', { ack: true });
      const p2 = await pub.publish('hist.a', 'two', { ack: true });
      expect(p1?.epoch).toMatch(/^[0-9a-f]{16}$/);
      expect(p2).toEqual({ epoch: p1!.epoch, offset: p1!.offset + 1 });
      // a plain topic is acked too, without a position
      // a topic no durable rule covers: a typed refusal, not an ACK that claims durability (issue #16)
      await expect(pub.publish('plain.a', 'x', { ack: true })).rejects.toMatchObject({ code: 'MB_ERR_NOT_DURABLE' });
      const r = await n.durability!.historyStore.read('hist.a', n.durability!.cfg.topics[0]!, { epoch: p1!.epoch, offset: 0 });
      expect(r.events.map((e) => e.offset)).toEqual([1, 2]);
    });

    it('stores durable events published over HTTP too', async () => {
      const n = await node({ durable: durable([{ pattern: 'hist.>', history: { size: 100 } }]) });
      const http = await startHttp(n, { port: 0, host: '127.0.0.1' });
      try {
        const pub = await client(n);
        const p1 = await pub.publish('hist.h', 'tcp', { ack: true });
        const res = await fetch(`${http.url}/v1/publish/hist.h`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'http' });
        expect(res.status).toBe(200);
        await until(async () => (await n.durability!.historyStore.read('hist.h', n.durability!.cfg.topics[0]!, { epoch: p1!.epoch, offset: 0 })).events.length === 2, 'HTTP event stored');
        const r = await n.durability!.historyStore.read('hist.h', n.durability!.cfg.topics[0]!, { epoch: p1!.epoch, offset: 0 });
        expect(r.events.map((e) => Buffer.from(new Frame(e.frame, 0, e.frame.length).payload).toString())).toEqual(['tcp', 'http']);
      } finally {
        await http.close();
      }
    });

    it('delivers durable events with their position', async () => {
      const n = await node({ durable: durable([{ pattern: 'hist.>', history: { size: 100 } }]) });
      const sub = await client(n);
      const got: Array<Position | undefined> = [];
      sub.subscribe('hist.*', { callback: (m) => void got.push(m.position) });
      await sub.flush();
      const pub = await client(n);
      const p = await pub.publish('hist.b', 'x', { ack: true });
      await until(() => got.length === 1, 'delivery');
      expect(got[0]).toEqual(p);
    });

    it('a killed subscriber resumes exactly where it left: every event once, in order, recovered=true', async () => {
      const n = await node({ durable: durable([{ pattern: 'stream.>', history: { size: 10_000 } }]) });
      const subc = await client(n);
      const got: string[] = [];
      const recoveries: Array<Extract<Status, { type: 'recovery' }>> = [];
      subc.on('status', (s) => {
        if (s.type === 'recovery') recoveries.push(s);
      });
      const sub = subc.subscribe('stream.x', { recover: true, callback: (m) => void got.push(text(m)) });
      await until(() => recoveries.length === 1, 'first SUB ack');
      expect(recoveries[0]!.recovered).toBe(true);
      const pub = await client(n);
      const N = 600;
      let killed = 0;
      for (let i = 1; i <= N; i++) {
        const acked = pub.publish('stream.x', String(i), { ack: true });
        if (i % 150 === 0 && i < N) {
          await acked;
          // the previous resubscribe has been answered: this kill interrupts a live stream
          await until(() => recoveries.length === killed + 1, 'subscriber resubscribed');
          kill(n, subc);
          killed++;
        }
        if (i % 50 === 0) await acked;
      }
      await until(() => got.length >= N, `all ${N} events (got ${got.length})`);
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toEqual(Array.from({ length: N }, (_, i) => String(i + 1)));
      expect(killed).toBe(3);
      expect(subc.stats().reconnects).toBe(3);
      expect(recoveries.length).toBe(4);
      expect(recoveries.every((r) => r.recovered)).toBe(true);
      expect(sub.recovered).toBe(true);
      expect(sub.position?.offset).toBe(N);
    });

    it('an app saves a position and resumes from it after a restart', async () => {
      const n = await node({ durable: durable([{ pattern: 'app.>', history: { size: 1000 } }]) });
      const pub = await client(n);
      const first = await client(n);
      const got1: string[] = [];
      const s1 = first.subscribe('app.feed', { recover: true, callback: (m) => void got1.push(text(m)) });
      await until(() => s1.recovered !== undefined, 'ack');
      for (let i = 1; i <= 5; i++) await pub.publish('app.feed', `e${i}`, { ack: true });
      await until(() => got1.length === 5, 'first five');
      const saved = s1.position!;
      await first.close();
      for (let i = 6; i <= 9; i++) await pub.publish('app.feed', `e${i}`, { ack: true });
      const second = await client(n);
      const got2: string[] = [];
      const s2 = second.subscribe('app.feed', { since: saved, callback: (m) => void got2.push(text(m)) });
      await until(() => got2.length === 4, 'missed four');
      await pub.publish('app.feed', 'e10', { ack: true });
      await until(() => got2.length === 5, 'live one');
      expect(got2).toEqual(['e6', 'e7', 'e8', 'e9', 'e10']);
      expect(s2.recovered).toBe(true);
    });

    it('history trimmed below the position: recovered=false, then live from the current position', async () => {
      const n = await node({ durable: durable([{ pattern: 'trim.>', history: { size: 5 } }]) });
      const pub = await client(n);
      let last: Position | undefined;
      for (let i = 1; i <= 3; i++) last = await pub.publish('trim.t', `a${i}`, { ack: true });
      for (let i = 1; i <= 20; i++) await pub.publish('trim.t', `b${i}`, { ack: true });
      const c = await client(n);
      const got: string[] = [];
      const s = c.subscribe('trim.t', { since: last, callback: (m) => void got.push(text(m)) });
      await until(() => s.recovered !== undefined, 'ack');
      expect(s.recovered).toBe(false);
      expect(s.position).toEqual({ epoch: last!.epoch, offset: 23 });
      await pub.publish('trim.t', 'live', { ack: true });
      await until(() => got.length === 1, 'live');
      expect(got).toEqual(['live']);
    });

    it('a position from another epoch is not recovered', async () => {
      const n = await node({ durable: durable([{ pattern: 'ep.>', history: { size: 100 } }]) });
      const pub = await client(n);
      await pub.publish('ep.t', 'x', { ack: true });
      const c = await client(n);
      const s = c.subscribe('ep.t', { since: { epoch: 'deadbeefdeadbeef', offset: 1 }, callback: () => {} });
      await until(() => s.recovered !== undefined, 'ack');
      expect(s.recovered).toBe(false);
    });

    it('latest value: a new subscriber gets the last event of each matching topic at once', async () => {
      const n = await node({ durable: durable([{ pattern: 'price.>', latest: true }]) });
      const pub = await client(n);
      await pub.publish('price.eur', '1.10', { ack: true });
      await pub.publish('price.eur', '1.11', { ack: true });
      await pub.publish('price.gbp', '0.85', { ack: true });
      pub.publish('other.x', 'no');
      await pub.flush();
      const c = await client(n);
      const got: string[] = [];
      c.subscribe('price.*', { callback: (m) => void got.push(`${m.topic}=${text(m)}`) });
      await until(() => got.length === 2, 'latest values');
      expect(got.sort()).toEqual(['price.eur=1.11', 'price.gbp=0.85']);
      const none: string[] = [];
      c.subscribe('price.*', { latest: false, callback: (m) => void none.push(text(m)) });
      await c.flush();
      await new Promise((r) => setTimeout(r, 100));
      expect(none).toEqual([]);
    });
  });
}

/** Durable work queues and delayed publish. */
export function queueScenarios(suite: Suite): void {
  const { node, client } = suite;
  function durable(extra: Partial<NonNullable<NodeOptions['durable']>> = {}, url = suite.redis().url): NodeOptions['durable'] {
    return { redis: url, prefix: suite.prefix(), ...extra };
  }
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
      // Every job once. A job the departing consumer's worker fetched while closing is given back
      // at the head of the queue (SPEC 15.5); the moments this races are in durable-queue-leave.test.ts.
      expect([...got].sort()).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
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
}

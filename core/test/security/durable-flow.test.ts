import { afterEach, describe, expect, it } from 'vitest';
import { Flags, FrameType, decodeSubAck } from '@meshbus/proto';
import { RawClient, requireRedisServer, startRedisServer, until } from '@meshbus/testkit';
import { silentLogger, startNode } from '../../src/index.js';

/**
 * Hostile review (variant of issue #14.2, flow control): what a node reads
 * from Redis for one subscriber goes out as the connection drains.
 *
 * Latest values are
 * read in pages of about 32 topics, and a page went into the subscriber's
 * queue at once. With values of up to maxPayload (1 MiB) a page is up to
 * 32 MiB, past maxPending (8 MiB): a subscriber that reads was closed as a
 * slow consumer after 8 values — and again after every resubscribe, so any
 * publisher of a few large values on a `latest` rule cut off every
 * subscriber of its patterns. Values now go out as the connection drains.
 *
 * History replay pages (about 1 MiB) went into the queue whole too: with a
 * maxPending of 1 MiB a resuming subscriber that reads was closed as a slow
 * consumer by its first page.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

describe('latest values of a wildcard SUB flow with the connection', () => {
  it('40 values of 512 KiB (two pages, each past maxPending) all reach a subscriber that reads, which stays connected', async (ctx) => {
    requireRedisServer(ctx);
    // Its own Redis: 20 MiB of values.
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    const n = await startNode({ port: 0, logger: silentLogger, maxPending: 8 * 1024 * 1024, durable: { redis: redis.url, prefix: 'lvflow:', topics: [{ pattern: 'lv.>', latest: true }] } });
    cleanups.push(() => n.close());
    const pub = await RawClient.connect(n.port);
    cleanups.push(() => pub.close());
    const value = new Uint8Array(512 * 1024).fill(9);
    // Acknowledged once Redis has each.
    for (let i = 0; i < 40; i++) pub.send({ type: FrameType.PUB, topic: `lv.t${String(i).padStart(2, '0')}`, correlation: i + 1, flags: Flags.ACK_REQUESTED, payload: value });
    await until(() => pub.got.filter((g) => g.type === FrameType.ACK).length === 40, 'all 40 stored', 30_000);

    const sub = await RawClient.connect(n.port);
    cleanups.push(() => sub.close());
    sub.sub('lv.>', 7);
    await until(() => sub.closed || sub.events().filter((g) => g.sid === 7).length === 40, 'every latest value', 30_000);
    expect(sub.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual([]);
    expect(sub.closed).toBe(false);
    // Topic order within a page, not across pages (SPEC 15.4).
    expect(sub.events().filter((g) => g.sid === 7).map((g) => g.topic).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `lv.t${String(i).padStart(2, '0')}`).sort());
  }, 60_000);
});

describe('a history replay flows with the connection', () => {
  it('24 events of 256 KiB replayed to a subscriber that reads, with maxPending 1 MiB: all arrive in order, no slow consumer', async (ctx) => {
    requireRedisServer(ctx);
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    const n = await startNode({ port: 0, logger: silentLogger, maxPending: 1024 * 1024, durable: { redis: redis.url, prefix: 'replayflow:', topics: [{ pattern: 'h.>', history: { size: 100 } }] } });
    cleanups.push(() => n.close());
    const pub = await RawClient.connect(n.port);
    cleanups.push(() => pub.close());
    const value = new Uint8Array(256 * 1024).fill(3);
    for (let i = 0; i < 24; i++) pub.send({ type: FrameType.PUB, topic: 'h.x', correlation: i + 1, flags: Flags.ACK_REQUESTED, payload: value });
    await until(() => pub.got.filter((g) => g.type === FrameType.ACK).length === 24, 'all 24 stored', 30_000);
    pub.sub('h.x', 1000, { since: ['', 0] });
    const ack = await pub.waitFor((g) => g.type === FrameType.ACK && g.correlation === 1000 && g.payload.length > 0);
    const { epoch } = decodeSubAck(ack.payload);

    const sub = await RawClient.connect(n.port);
    cleanups.push(() => sub.close());
    sub.sub('h.x', 9, { since: [epoch, 0] });
    await until(() => sub.closed || sub.events().filter((g) => g.sid === 9).length === 24, 'the whole history', 30_000);
    expect(sub.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual([]);
    expect(sub.closed).toBe(false);
    expect(sub.events().filter((g) => g.sid === 9).map((g) => g.offset)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  }, 60_000);
});

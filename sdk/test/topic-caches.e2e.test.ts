// The SDK's topic caches (publish: topic-cache.ts, receive: dispatcher.ts)
// are bounded with second-chance replacement. With more topics in flight
// than they hold, every event must still carry and deliver its own topic,
// and subscribe/unsubscribe must still change who gets what.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MeshNode } from '@meshbus/core';
import { topicHash, utf8Encode } from '@meshbus/proto';
import { Fixture, until, url } from '@meshbus/testkit';
import { ClockCache } from '../src/clock-cache.js';
import { connect, type Client, type Msg } from '../src/index.js';
import { replyToken } from '../src/reply-token.js';
import { peekTopicBytes, topicBytes, writeTopic } from '../src/topic-cache.js';

/** More than either cache holds (16,384). */
const MANY = 20_000;

describe('ClockCache', () => {
  it('when full, admits one new key in 8, replacing the first unmarked entry (marked ones get a second chance)', () => {
    const c = new ClockCache<string, number>(4);
    for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) c.set(k, i);
    c.get('a');
    c.get('b');
    const fresh = ['e', 'f', 'g', 'h', 'i', 'j', 'k', 'l'];
    for (const k of fresh) c.set(k, 9);
    expect([c.get('a'), c.get('b'), c.get('c'), c.get('d')]).toEqual([0, 1, undefined, 3]);
    expect(fresh.map((k) => c.get(k))).toEqual([undefined, undefined, undefined, undefined, undefined, undefined, undefined, 9]);
  });

  it('keeps hitting on part of a cycle of more keys than it holds (a full cache does not churn on every miss)', () => {
    const c = new ClockCache<number, number>(1000);
    let hits = 0;
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 3000; k++) {
        if (c.get(k) === k) hits++;
        else c.set(k, k);
      }
    }
    expect(hits).toBeGreaterThan(20 * 3000 * 0.1);
  });

  it('keeps a working set that is in use while many other keys pass by (a full cache is not cleared)', () => {
    const c = new ClockCache<number, number>(1000);
    const hot = Array.from({ length: 500 }, (_, i) => i);
    for (const k of hot) c.set(k, k * 2);
    let lost = 0;
    for (let k = 1000; k < 100_000; k++) {
      c.set(k, k * 2);
      const h = hot[k % hot.length]!;
      if (c.get(h) !== h * 2) lost++;
    }
    expect(lost).toBe(0);
    for (const h of hot) expect(c.get(h)).toBe(h * 2);
  });
});

describe('publish topic cache', () => {
  it('gives every topic its own UTF-8 bytes and hash, past the cache bound and for non-ASCII topics', () => {
    const topics = Array.from({ length: MANY }, (_, i) => (i % 7 === 0 ? `pub.é${i}.☃` : `pub.t${i}`));
    const buf = new Uint8Array(64);
    const wrong: string[] = [];
    for (let round = 0; round < 2; round++) {
      for (const t of topics) {
        const e = topicBytes(t);
        const want = utf8Encode(t);
        writeTopic(e, t, buf, 3);
        const bytes = buf.subarray(3, 3 + e.length);
        if (e.length !== want.length || e.hash !== topicHash(want) || bytes.some((b, i) => b !== want[i])) wrong.push(t);
      }
    }
    expect(wrong).toEqual([]);
  });
});

/** Two ASCII topics with the same 32-bit topic hash (4009521579; found by a birthday search over `rx.c<base 36>`). */
const COLLIDING: [string, string] = ['rx.c172vu', 'rx.c1euea'];

describe('reply topics', () => {
  it('are not kept in the publish cache (each names one request)', () => {
    const reply = `_INBOX.0123456789abcdef.7.${replyToken()}`;
    expect(topicBytes(reply).length).toBe(reply.length);
    topicBytes('pub.other');
    expect(peekTopicBytes(reply)).toBeUndefined();
    expect(peekTopicBytes('pub.other')).toBeDefined();
  });

  it('carry distinct 32-hex-digit tokens across refills of the random pool', () => {
    const tokens = Array.from({ length: 300 }, () => replyToken());
    expect(tokens.filter((t) => !/^[0-9a-f]{32}$/.test(t))).toEqual([]);
    expect(new Set(tokens).size).toBe(tokens.length);
  });
});

describe('receive cache through a node', () => {
  const fx = new Fixture();
  let node: MeshNode;
  let sub: Client;
  let pub: Client;

  beforeAll(async () => {
    node = await fx.node();
    sub = fx.track(await connect(url(node)));
    pub = fx.track(await connect(url(node)));
  });
  afterAll(() => fx.teardown());

  it('delivers each event with its own topic when more topics are in flight than the caches hold', async () => {
    const got: string[] = [];
    const s = sub.subscribe('rx.*', { callback: (m: Msg) => got.push(m.topic) });
    await sub.flush();
    const topics = Array.from({ length: MANY }, (_, i) => (i % 5 === 0 ? `rx.ü${i}` : `rx.t${i}`));
    const sent: string[] = [];
    for (let round = 0; round < 2; round++) {
      for (const t of topics) {
        pub.publish(t, 'x');
        sent.push(t);
      }
      await pub.flush();
    }
    await until(() => got.length >= sent.length, 'every event', 20_000);
    expect(got).toEqual(sent);
    s.unsubscribe();
  });

  it('tells apart two topics with the same 32-bit hash', async () => {
    const [a, b] = COLLIDING;
    expect(topicHash(utf8Encode(a))).toBe(topicHash(utf8Encode(b)));
    const got: string[] = [];
    const s = sub.subscribe('rx.>', { callback: (m: Msg) => got.push(m.topic) });
    await sub.flush();
    for (const t of [a, b, a, a, b]) pub.publish(t, 'x');
    await pub.flush();
    await until(() => got.length >= 5, 'every event');
    expect(got).toEqual([a, b, a, a, b]);
    s.unsubscribe();
  });

  it('follows subscribe and unsubscribe for topics already cached, and after eviction', async () => {
    const wide: string[] = [];
    const one: string[] = [];
    const w = sub.subscribe('sw.*', { callback: (m: Msg) => wide.push(m.topic) });
    await sub.flush();
    const topics = Array.from({ length: MANY }, (_, i) => `sw.t${i}`);
    for (const t of topics) pub.publish(t, 'x');
    await pub.flush();
    await until(() => wide.length >= MANY, 'the first pass');
    // The receive cache is full of these topics, with `w` as their only subscriber.
    const o = sub.subscribe('sw.t19999', { callback: (m: Msg) => one.push(m.topic) });
    await sub.flush();
    w.unsubscribe();
    await sub.flush();
    for (const t of ['sw.t19999', 'sw.t0', 'sw.t19998', 'sw.t19999']) pub.publish(t, 'x');
    await pub.flush();
    await until(() => one.length >= 2, 'the literal subscription');
    await pub.flush();
    expect(one).toEqual(['sw.t19999', 'sw.t19999']);
    expect(wide).toHaveLength(MANY);
    o.unsubscribe();
  });
});

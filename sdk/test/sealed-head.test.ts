// A plain publish copies its topic's sealed head (sealed-head.ts) instead of
// writing and checksumming the header: the bytes must be exactly what the
// codec's encoder makes, whatever lengths follow each other, and a node must
// accept and deliver them.
import { describe, expect, it } from 'vitest';
import { FIXED_SIZE, FrameType, encodeFrame } from '@meshbus/proto';
import { nodeKit, until, url } from '@meshbus/testkit';
import { connect, type Msg } from '../src/index.js';
import { sealedHead } from '../src/sealed-head.js';
import { topicBytes } from '../src/topic-cache.js';

/** Lengths in an order that grows, shrinks, repeats and crosses byte boundaries of both length fields. */
const LENGTHS = [16, 16, 0, 1, 255, 256, 2048, 0, 65_535, 65_536, 70_000, 3, 3, 16];

describe('sealedHead', () => {
  it('makes the prefix, header and topic that encodeFrame makes, for each payload length in turn', () => {
    for (const topic of ['sh.plain', 'sh.é.☃', 'x', `sh.${'l'.repeat(300)}`]) {
      for (const len of LENGTHS) {
        const payload = new Uint8Array(len).fill(7);
        const head = sealedHead(topicBytes(topic), len);
        expect(head, topic).toBeDefined();
        const want = encodeFrame({ type: FrameType.PUB, topic, payload });
        expect(Buffer.from(head!).equals(Buffer.from(want.subarray(0, want.length - len))), `${topic} at ${len}`).toBe(true);
      }
    }
  });

  it('is not made for a reply topic (not kept by the topic cache)', () => {
    expect(sealedHead(topicBytes('_INBOX.0011223344556677.1.abc'), 4)).toBeUndefined();
    expect(sealedHead(topicBytes('sh.kept'), 4)?.length).toBe(FIXED_SIZE + 'sh.kept'.length);
  });

  it('is not made for a non-ASCII topic the full cache does not keep (it would be made per event and thrown away)', () => {
    // 16,384 topics fill the cache; then 7 new topics in 8 are not kept (clock-cache.ts).
    for (let i = 0; i < 16_384; i++) topicBytes(`sh.fill.${i}`);
    const names = Array.from({ length: 64 }, (_, i) => `sh.né.${i}`);
    const sealed = names.filter((n) => sealedHead(topicBytes(n), 4) !== undefined).length;
    // c32ec62: 64 of 64 sealed (a non-ASCII entry has its bytes whether kept or not). Kept: 8 of 64.
    expect(sealed).toBeLessThanOrEqual(8);
    // What such a topic sends is still the encoder's (sendEvent writes its header): through a node, below.
  });
});

describe('plain publishes through a node', () => {
  const fx = nodeKit();

  it('delivers every event whole when payload lengths and topics change from one event to the next', async () => {
    const node = await fx.node();
    const [sub, pub] = [fx.track(await connect(url(node))), fx.track(await connect(url(node)))];
    const got: string[] = [];
    sub.subscribe('sh.>', { callback: (m: Msg) => got.push(`${m.topic}:${m.data.length}:${m.data[m.data.length - 1] ?? '-'}`) });
    await sub.flush();
    const sent: string[] = [];
    // 2,048 and 2,049 straddle the copy bound above which the payload is sent uncopied.
    const lengths = [...LENGTHS.filter((l) => l < 60_000), 2049, 2048, 2049, 0];
    for (let round = 0; round < 3; round++) {
      for (const [i, len] of lengths.entries()) {
        const topic = i % 3 === 0 ? 'sh.a' : i % 3 === 1 ? 'sh.ü' : 'sh.a.b';
        const payload = new Uint8Array(len).fill((round * 31 + i) & 0xff);
        pub.publish(topic, payload);
        sent.push(`${topic}:${len}:${len > 0 ? (round * 31 + i) & 0xff : '-'}`);
      }
      await pub.flush();
    }
    await until(() => got.length >= sent.length, 'every event');
    expect(got).toEqual(sent);
  });
});

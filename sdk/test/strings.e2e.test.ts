// Issue #14 part 5: every string handed to the SDK (topic, pattern, header
// name and value, string payload, codec payloads, queue group, client name,
// token) either round-trips exactly, byte for byte, through a real node, or
// is refused with a typed error at the call. Property tests run over
// arbitrary UTF-16, ill-formed included (fast-check prints the seed of a failure).
import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { MeshNode } from '@meshbus/core';
import { FIXED_SIZE, FrameType, headerOf, loneSurrogateAt, topicHash, topicProblem, writeHeader } from '@meshbus/proto';
import { Fixture, RawClient, until, url } from '@meshbus/testkit';
import { JsonCodec, MsgpackCodec, StringCodec, connect, type Client, type Msg } from '../src/index.js';

/** Any sequence of UTF-16 code units: lone surrogates, BOMs, controls and all. */
const units = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
/** Mostly well-formed text of every plane, with a leading BOM now and then, and raw units. */
const anyString = fc.oneof(units, fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), units.map((s) => '\uFEFF' + s), fc.string({ unit: 'binary', maxLength: 20 }).map((s) => '\uFEFF' + s));

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? 'untyped';
  }
}

const fx = new Fixture();
let node: MeshNode;
let sub: Client;
let pub: Client;
const got: Msg[] = [];

beforeAll(async () => {
  node = await fx.node();
  sub = fx.track(await connect(url(node)));
  pub = fx.track(await connect(url(node)));
  sub.subscribe('>', { callback: (m) => got.push(m) });
  await sub.flush();
});
afterAll(() => fx.teardown());
afterEach(() => {
  got.length = 0;
});

/** Publishes with `pub` and returns what `sub` received. */
async function roundTrip(send: () => void): Promise<Msg> {
  const before = got.length;
  send();
  await pub.flush();
  await until(() => got.length > before, 'delivery', 5000);
  return got[got.length - 1]!;
}

describe('the issue examples', () => {
  it("a name cut inside an emoji ('a.\\uD83D') is refused by subscribe() and publish(), not sent as U+FFFD", () => {
    expect(codeOf(() => pub.subscribe('a.\uD83D'))).toBe('MB_ERR_BAD_TOPIC');
    expect(codeOf(() => pub.publish('a.\uD83D', 'x'))).toBe('MB_ERR_BAD_TOPIC');
    expect(codeOf(() => pub.request('a.\uD83D', 'x').catch(() => {}))).toBeUndefined();
    return expect(pub.request('a.\uD83D', 'x')).rejects.toMatchObject({ code: 'MB_ERR_BAD_TOPIC' });
  });

  it('a leading U+FEFF survives in a topic and a string payload', async () => {
    const own: Msg[] = [];
    sub.subscribe('\uFEFFdemo.x', { callback: (m) => own.push(m) });
    await sub.flush();
    const m = await roundTrip(() => pub.publish('\uFEFFdemo.x', '\uFEFFhello', { headers: { '\uFEFFk': '\uFEFFv' } }));
    expect(m.topic).toBe('\uFEFFdemo.x');
    expect(m.string()).toBe('\uFEFFhello');
    expect(m.headers).toEqual({ '\uFEFFk': '\uFEFFv' });
    await until(() => own.length === 1);
    expect(own[0]!.topic).toBe('\uFEFFdemo.x');
  });
});

describe('property: exact round trip or a typed refusal at the call', () => {
  it('topics', async () => {
    await fc.assert(
      fc.asyncProperty(units, async (s) => {
        const topic = `t.${s}`;
        if (topicProblem(topic, false) !== undefined) {
          expect(codeOf(() => pub.publish(topic, 'x'))).toBe('MB_ERR_BAD_TOPIC');
          // `t.*` or `t.>` is no topic but a valid pattern: only an invalid pattern is refused by subscribe.
          if (topicProblem(topic, true) !== undefined) expect(codeOf(() => pub.subscribe(topic))).toBe('MB_ERR_BAD_TOPIC');
          return;
        }
        const m = await roundTrip(() => pub.publish(topic, 'x'));
        expect(m.topic).toBe(topic);
      }),
      { numRuns: 150 },
    );
  });

  it('header names and values', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyString, fc.constant('__proto__')), anyString, async (k, v) => {
        const headers = { [k]: v };
        if (loneSurrogateAt(k) >= 0 || loneSurrogateAt(v) >= 0 || k === '__proto__') {
          expect(codeOf(() => pub.publish('h.x', 'x', { headers }))).toBe('MB_ERR_INVALID_ARGUMENT');
          return;
        }
        const m = await roundTrip(() => pub.publish('h.x', 'x', { headers }));
        expect(m.headers).toEqual(headers);
      }),
      { numRuns: 150 },
    );
  });

  it('string payloads, plain and through the string, JSON and msgpack codecs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyString, fc.constant('__proto__')), async (s) => {
        const ill = loneSurrogateAt(s) >= 0;
        if (ill) {
          expect(codeOf(() => pub.publish('s.x', s))).toBe('MB_ERR_INVALID_ARGUMENT');
          expect(codeOf(() => pub.publish('s.x', s, { codec: StringCodec }))).toBe('MB_ERR_INVALID_ARGUMENT');
          expect(codeOf(() => pub.publish('s.x', { [s]: [s] }, { codec: MsgpackCodec }))).toBe('MB_ERR_INVALID_ARGUMENT');
        } else if (s === '__proto__') {
          expect(codeOf(() => pub.publish('s.x', { [s]: [s] }, { codec: MsgpackCodec }))).toBe('MB_ERR_INVALID_ARGUMENT');
        } else {
          expect((await roundTrip(() => pub.publish('s.x', s))).string()).toBe(s);
          expect(StringCodec.decode((await roundTrip(() => pub.publish('s.x', s, { codec: StringCodec }))).data)).toBe(s);
          expect(MsgpackCodec.decode((await roundTrip(() => pub.publish('s.x', { [s]: [s] }, { codec: MsgpackCodec }))).data)).toEqual({ [s]: [s] });
        }
        // JSON escapes a lone surrogate (\udXXX), so every string round-trips through it.
        expect(JsonCodec.decode((await roundTrip(() => pub.publish('s.x', { s }, { codec: JsonCodec }))).data)).toEqual({ s });
      }),
      { numRuns: 150 },
    );
  });

  it('queue group, client name and token are checked at the call', async () => {
    await fc.assert(
      fc.asyncProperty(units, async (s) => {
        if (loneSurrogateAt(s) < 0) return;
        expect(codeOf(() => pub.subscribe('g.x', { queue: s }))).toBe('MB_ERR_INVALID_ARGUMENT');
        await expect(connect(url(node), { name: s })).rejects.toMatchObject({ code: 'MB_ERR_INVALID_ARGUMENT' });
        await expect(connect(url(node), { token: s })).rejects.toMatchObject({ code: 'MB_ERR_INVALID_ARGUMENT' });
      }),
      { numRuns: 50 },
    );
  });
});

describe('the node refuses topic bytes that are not UTF-8', () => {
  /** A PUB or SUB frame whose topic is `bytes` as they are (with a correct hash and CRC). */
  function rawFrame(type: FrameType, bytes: Uint8Array, correlation: number): Uint8Array {
    const buf = new Uint8Array(FIXED_SIZE + bytes.length);
    buf.set(bytes, FIXED_SIZE);
    writeHeader(buf, 0, headerOf({ type, correlation }, topicHash(bytes), bytes.length, 0, 0));
    return buf;
  }

  it('a lone surrogate written by a lax encoder (CESU-8 ED A0 BD) or any invalid byte: MB_ERR_BAD_TOPIC for PUB and SUB', async () => {
    const raw = await RawClient.connect(node.port);
    fx.closers.push(() => raw.close());
    const bad = [Uint8Array.of(0x61, 0x2e, 0xed, 0xa0, 0xbd), Uint8Array.of(0x61, 0x2e, 0xff), Uint8Array.of(0x61, 0x2e, 0xc3)];
    let corr = 100;
    for (const b of bad) {
      for (const type of [FrameType.PUB, FrameType.SUB]) {
        const c = ++corr;
        raw.socket.write(rawFrame(type, b, c));
        const err = await raw.waitFor((g) => g.type === FrameType.ERROR && g.correlation === c);
        expect(err.error, `${type} ${[...b].join(',')}`).toBe('MB_ERR_BAD_TOPIC');
      }
    }
  });
});

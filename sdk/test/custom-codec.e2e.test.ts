/**
 * An application's codec is checked, not trusted (SDK README "Codecs"): what
 * its `encode` returns must be a Uint8Array, and what its `encode` or
 * `decode` throws reaches the caller as ClientError MB_ERR_CODEC (the
 * original as `cause`). Review of 2026-12-04: an `encode` returning the
 * string 'hello' was published as 5 zero bytes (an array-like too), and
 * throwing, returning null or a number gave a raw Error, TypeError or
 * RangeError; a throwing `decode` reached `msg.decoded()`'s caller raw.
 */
import { describe, expect, it } from 'vitest';
import { nodeKit, url } from '@meshbus/testkit';
import { connect, type Codec } from '../src/index.js';

const fx = nodeKit();

const returning = (value: unknown): Codec<never> => ({ name: 'custom', encode: () => value as Uint8Array, decode: (b) => b as never });
const thrown = (run: () => unknown): { code?: string; cause?: unknown } => {
  try {
    run();
  } catch (e) {
    return e as { code?: string; cause?: unknown };
  }
  return {};
};

describe('a custom codec', () => {
  it("what encode returns that is not bytes, and what it throws, is ClientError MB_ERR_CODEC; nothing is published", async () => {
    const n = await fx.node();
    const c = fx.track(await connect(url(n)));
    const got: string[] = [];
    c.subscribe('cc.>', { callback: (m) => void got.push(m.topic) });
    await c.flush();
    for (const [topic, value] of [['string', 'hello'], ['arrayLike', { length: 5 }], ['array', [104, 105]], ['null', null], ['number', 7]] as const) {
      // Before: 'string' and 'arrayLike' were published as zero bytes; the others threw TypeError / RangeError.
      expect(thrown(() => c.publish(`cc.${topic}`, 'v', { codec: returning(value) })).code).toBe('MB_ERR_CODEC');
    }
    const bug = new Error('encoder bug');
    const e = thrown(() => c.publish('cc.throws', 'v', { codec: { name: 'custom', encode: () => { throw bug; }, decode: (b) => b } }));
    expect(e.code).toBe('MB_ERR_CODEC');
    expect(e.cause).toBe(bug);
    c.publish('cc.ok', 'v', { codec: returning(new Uint8Array([1])) });
    await c.flush();
    expect(got).toEqual(['cc.ok']);
  });

  it("what decode throws reaches msg.decoded()'s caller as ClientError MB_ERR_CODEC", async () => {
    const n = await fx.node();
    const c = fx.track(await connect(url(n)));
    const bug = new RangeError('decoder bug');
    const sub = c.subscribe('dd.x', { codec: { name: 'd', encode: (v: Uint8Array) => v, decode: () => { throw bug; } } });
    c.publish('dd.x', 'z');
    const m = (await sub[Symbol.asyncIterator]().next()).value!;
    const e = thrown(() => m.decoded());
    expect(e.code).toBe('MB_ERR_CODEC');
    expect(e.cause).toBe(bug);
  });
});

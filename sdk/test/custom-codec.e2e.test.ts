/**
 * An application's codec is checked, not trusted (SDK README "Codecs"): what
 * its `encode` returns must be a Uint8Array, and what its `encode` or
 * `decode` throws reaches the caller as ClientError MB_ERR_CODEC (the
 * original as `cause`). Review of 2026-12-04: an `encode` returning the
 * string 'hello' was published as 5 zero bytes (an array-like too), and
 * throwing, returning null or a number gave a raw Error, TypeError or
 * RangeError; a throwing `decode` reached `msg.decoded()`'s caller raw.
 * Its review: a thrown value whose `message` getter throws, a thrown Proxy,
 * or an `encode` that is a throwing getter still escaped untyped; bytes
 * from another realm (`vm`, jsdom, an iframe) were refused.
 */
import { runInNewContext } from 'node:vm';
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

  it('what cannot even be described (a throwing message getter, a Proxy, a throwing encode getter) is still MB_ERR_CODEC', async () => {
    const n = await fx.node();
    const c = fx.track(await connect(url(n)));
    const getterBomb = Object.defineProperty(new Error('x'), 'message', { get: () => { throw new Error('no message'); } });
    const proxy = new Proxy({}, { get: () => { throw new Error('trap'); }, getPrototypeOf: () => { throw new Error('trap'); } });
    for (const value of [getterBomb, proxy, Object.create(null)]) {
      // Before: the error raised while describing it escaped (a raw Error or TypeError).
      const e = thrown(() => c.publish('cc.x', 'v', { codec: { name: 'c', encode: () => { throw value; }, decode: (b) => b } }));
      expect(e.code).toBe('MB_ERR_CODEC');
      expect(e.cause).toBe(value);
    }
    const getter = Object.defineProperty({ name: 'g', decode: (b: Uint8Array) => b }, 'encode', { get: () => { throw new Error('getter'); } });
    expect(thrown(() => c.publish('cc.x', 'v', { codec: getter as unknown as Codec<never> })).code).toBe('MB_ERR_CODEC');
  });

  it('bytes from another realm (vm) are published as they are, raw or from a codec', async () => {
    const n = await fx.node();
    const c = fx.track(await connect(url(n)));
    const got: string[] = [];
    c.subscribe('realm.>', { callback: (m) => void got.push(`${m.topic}=${m.string()}`) });
    await c.flush();
    const foreign = runInNewContext('new Uint8Array([104, 105, 33]).subarray(0, 2)') as Uint8Array;
    expect(foreign instanceof Uint8Array).toBe(false);
    // Before: MB_ERR_INVALID_ARGUMENT (raw) and MB_ERR_CODEC (codec).
    c.publish('realm.raw', foreign);
    c.publish('realm.codec', 'v', { codec: returning(foreign) });
    await c.flush();
    expect(got).toEqual(['realm.raw=hi', 'realm.codec=hi']);
  });
});

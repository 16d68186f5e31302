import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeExtension } from '@meshbus/proto';
import { RawClient, RawWs, frameWithExt, type RawFrames } from '@meshbus/testkit';
import { silentLogger, startNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';

/**
 * Hostile review (variant of issue #13.2, a bad extension block on ingress):
 * nodes decode extension blocks with msgpackr, the browser and mobile SDK
 * bundles with their own decoder. A block msgpackr reads but the bundles do
 * not — a timestamp or msgpackr record in an unknown key, a header value of
 * ill-formed UTF-8 (msgpackr makes U+FFFD of it), nesting past what a small
 * stack decodes — was accepted and forwarded: Node subscribers got the event,
 * every browser and mobile subscriber lost it (an 'error' status each). The
 * node now refuses such a block at ingress (ERROR 1011, frame dropped), by
 * the one rule every decoder of the block runs first (proto assertPlainMsgpack).
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const hex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'));
/** `{h: {a: 'b'}}` with one more key `x` whose value is `value` (msgpack hex). */
const withX = (value: string): Uint8Array => hex(`82a16881a161a162a178${value}`);

const BLOCKS: Record<string, Uint8Array> = {
  'a timestamp (ext -1) in an unknown key': withX('d6ff00000001'),
  'a msgpackr record (ext 0x72) in an unknown key': withX('d4724091a161a162'),
  'an ext 8 of another type in an unknown key': withX('c7020501ff'),
  'a header value of ill-formed UTF-8': hex('81a16881a161a2ff61'),
  'a reply topic of ill-formed UTF-8 on a REQ': hex('81a172a4612ec0af'),
  'nesting 40 deep in an unknown key': withX(`${'91'.repeat(40)}c0`),
};

describe.each(['tcp', 'ws'] as const)('extension blocks every client decodes alike, over %s', (transport) => {
  it('a block msgpackr reads but the browser and mobile bundles do not is refused with 1011 and never delivered', async () => {
    const n = await startNode({ port: 0, logger: silentLogger });
    cleanups.push(() => n.close());
    let connect = async (): Promise<RawFrames> => {
      const c = await RawClient.connect(n.port);
      cleanups.push(() => c.close());
      return c;
    };
    if (transport === 'ws') {
      const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
      cleanups.push(() => g.close());
      connect = async () => {
        const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`);
        cleanups.push(() => c.close());
        return c;
      };
    }
    const sub = await connect();
    sub.sub('x.>', 1);
    await sub.flush();
    const pub = await connect();
    let corr = 100;
    for (const [what, ext] of Object.entries(BLOCKS)) {
      const type = what.includes('REQ') ? FrameType.REQ : FrameType.PUB;
      pub.sendBytes(frameWithExt({ type, topic: 'x.bad', correlation: ++corr, payload: Buffer.from(what) }, ext));
      const e = await pub.waitFor((g) => g.type === FrameType.ERROR && g.correlation === corr);
      expect(e.error, what).toBe('MB_ERR_BAD_EXTENSION');
    }
    // A well-formed block still goes through, after all of them.
    pub.sendBytes(frameWithExt({ type: FrameType.PUB, topic: 'x.good', correlation: 1, payload: Buffer.from('ok') }, encodeExtension({ headers: { a: 'b' } })!));
    await sub.waitFor((g) => g.type === FrameType.PUB && g.topic === 'x.good');
    await pub.flush();
    expect(sub.events().map((g) => g.topic)).toEqual(['x.good']);
    expect(pub.closed).toBe(false);
  });
});

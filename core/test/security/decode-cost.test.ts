import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody, type FrameSpec } from '@meshbus/proto';
import { RawWs, frameWithExt, nodeKit, type RawFrames } from '@meshbus/testkit';
import { startNode, type MeshNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';

/**
 * What a client sends that the node decodes with msgpackr, built of empty
 * maps: one byte each on the wire, an object each to build (~150 ns against
 * ~1 ns a byte of a string). A SUB of 1 MB (an array of a million empty maps)
 * kept the node's event loop ~320 ms: 20 of them used 6.4 s of node CPU,
 * every client and peer link stalled meanwhile; a PUB whose extension block
 * held 65,000 empty maps in an unknown key cost ~17 ms (a 65 KB string
 * header 0.75 ms). Now client control bodies (HELLO, AUTH, SUB, UNSUB) hold
 * at most `maxHelloSize` bytes and 4 maps and arrays, extension blocks 256
 * (SPEC §8), checked on the bytes before decoding; over TCP and WebSocket.
 */

const kit = nodeKit({ start: startNode });

/** A msgpack array32 of `n` empty maps (0x80 each). */
function emptyMaps(n: number): Buffer {
  const b = Buffer.alloc(5 + n, 0x80);
  b[0] = 0xdd;
  b.writeUInt32BE(n, 1);
  return b;
}

/** An extension block `{ zz: [ {} × n ] }` (an unknown key: forwarded unread before). */
function extOfMaps(n: number): Buffer {
  const head = Buffer.from([0x81, 0xa2, 0x7a, 0x7a, 0xdc, 0, 0]);
  head.writeUInt16BE(n, 5);
  return Buffer.concat([head, Buffer.alloc(n, 0x80)]);
}

type Connect = (n: MeshNode) => Promise<RawFrames>;
const TRANSPORTS: Array<[string, Connect]> = [
  ['TCP', (n) => kit.raw(n)],
  [
    'WebSocket',
    async (n) => {
      const gw = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
      kit.defer(() => gw.close());
      return RawWs.connect(`ws://127.0.0.1:${gw.port}`);
    },
  ],
];

/** Node CPU (this process: node and raw client) for `frames`, up to the node's PONG. */
async function cpuFor(c: RawFrames, frames: () => void): Promise<number> {
  const t0 = process.cpuUsage();
  frames();
  await c.flush(60_000);
  const t = process.cpuUsage(t0);
  return t.user + t.system;
}

describe('msgpack a client sends is bounded in maps and arrays before it is decoded', () => {
  for (const [name, connect] of TRANSPORTS) {
    it(`control bodies: size and maps/arrays (${name})`, async () => {
      const node = await kit.node({ maxPayload: 2 * 1024 * 1024 });
      const c = await connect(node);
      const errors = (): Array<string | undefined> => c.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error);
      // 1 MB of empty maps as a SUB body: refused on its size, never decoded.
      c.send({ type: FrameType.SUB, topic: 'a.big', correlation: 1, payload: emptyMaps(1_000_000) });
      // Within maxHelloSize but 5,000 maps: refused on its shape.
      c.send({ type: FrameType.SUB, topic: 'a.wide', correlation: 2, payload: emptyMaps(5_000) });
      c.send({ type: FrameType.UNSUB, correlation: 2, payload: emptyMaps(5_000) });
      // A well-formed SUB still works.
      c.send({ type: FrameType.SUB, topic: 'a.ok', correlation: 3, payload: encodeBody({ q: 'g', slow: 'drop' }) });
      await c.flush();
      expect(errors()).toEqual(['MB_ERR_OUT_OF_RANGE', 'MB_ERR_BAD_BODY', 'MB_ERR_BAD_BODY']);
      c.pub('a.ok', 'y');
      await c.flush();
      expect(c.got.filter((g) => g.type === FrameType.PUB).map((g) => g.topic)).toEqual(['a.ok']);
      expect(c.closed).toBe(false);
    });

    it(`extension blocks: 256 maps and arrays at most (${name})`, async () => {
      const node = await kit.node();
      const sub = await connect(node);
      sub.sub('e.>', 1);
      await sub.flush();
      const pub = await connect(node);
      const spec = (topic: string): FrameSpec => ({ type: FrameType.PUB, topic, payload: Buffer.from('x') });
      pub.sendBytes(frameWithExt(spec('e.many'), extOfMaps(65_000)));
      pub.sendBytes(frameWithExt(spec('e.over'), extOfMaps(255)));
      pub.sendBytes(frameWithExt(spec('e.fits'), extOfMaps(254)));
      await pub.flush();
      await sub.flush();
      expect(pub.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual(['MB_ERR_BAD_EXTENSION', 'MB_ERR_BAD_EXTENSION']);
      expect(sub.got.filter((g) => g.type === FrameType.PUB).map((g) => g.topic)).toEqual(['e.fits']);
    });
  }

  it('costs the node about what the same bytes of plain events cost (TCP)', async () => {
    const node = await kit.node({ maxPayload: 2 * 1024 * 1024 });
    const c = await kit.raw(node);
    const big = emptyMaps(1_000_000);
    const plain = Buffer.alloc(big.length, 0x61);
    const ext = extOfMaps(65_000);
    const ratios: number[] = [];
    // Best of 3: a ratio, not a speed.
    for (let round = 0; round < 3; round++) {
      const base = await cpuFor(c, () => {
        for (let i = 0; i < 5; i++) c.send({ type: FrameType.PUB, topic: 'p.x', payload: plain });
        for (let i = 0; i < 80; i++) c.send({ type: FrameType.PUB, topic: 'p.x', payload: plain.subarray(0, ext.length) });
      });
      const hostile = await cpuFor(c, () => {
        for (let i = 0; i < 5; i++) c.send({ type: FrameType.SUB, topic: `s.${i}`, correlation: 10 + i, payload: big });
        for (let i = 0; i < 80; i++) c.sendBytes(frameWithExt({ type: FrameType.PUB, topic: 'p.x', payload: Buffer.from('x') }, ext));
      });
      ratios.push(hostile / base);
    }
    // Before: 5 such SUBs ~1.6 s and 80 such PUBs ~1.4 s against ~20 ms of plain events (100 x and more).
    expect(Math.min(...ratios)).toBeLessThan(4);
  });
});

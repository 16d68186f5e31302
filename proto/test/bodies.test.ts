import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { assertProperty } from '@meshbus/testkit/property';
import { pack } from 'msgpackr';
import {
  decodeBody,
  decodeError,
  decodeGoodbye,
  decodeHello,
  decodeSub,
  decodeWelcome,
  encodeBody,
} from '../src/control.js';
import { decodeExtension, encodeExtension, type Extension } from '../src/extension.js';
import { MeshbusError, type ProtocolError } from '../src/errors.js';
import { encodeFrame } from '../src/frame-encoder.js';
import { decodeFrames } from '../src/frame-decoder.js';
import { FrameType, MAX_EXT } from '../src/constants.js';

const p = (v: unknown): Uint8Array => pack(v) as Uint8Array;

function code(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(MeshbusError);
    return (e as ProtocolError).code;
  }
}

const hello = { v: [1, 1], token: 't', name: 'n', lang: 'l', echo: false };
const welcome = { v: 1, node: '00000000000000a1', client: '00000000000000c1', maxPayload: 1048576, maxTopic: 256, ping: 20000, peers: ['tcp://x:4480'] };

describe('control bodies', () => {
  it('round trip', () => {
    expect(decodeHello(encodeBody(hello))).toEqual(hello);
    expect(decodeHello(encodeBody({ v: [1, 3] }))).toEqual({ v: [1, 3] });
    expect(decodeWelcome(encodeBody(welcome))).toEqual(welcome);
    expect(decodeSub(encodeBody({ q: 'workers', slow: 'drop' }))).toEqual({ q: 'workers', slow: 'drop' });
    expect(decodeSub(new Uint8Array(0))).toEqual({});
    expect(decodeError(encodeBody({ code: 1009, message: 'bad' }))).toEqual({ code: 1009, message: 'bad' });
    expect(decodeGoodbye(encodeBody({ code: 2012, reason: 'drain', reconnect: ['a'] }))).toEqual({ code: 2012, reason: 'drain', reconnect: ['a'] });
  });

  it('unknown fields are ignored (kept), integer fields may arrive as float64', () => {
    expect(decodeError(p({ code: 1009, message: 'm', extra: [1] })).code).toBe(1009);
    const w = decodeWelcome(p({ ...welcome, maxPayload: 2 ** 40 }));
    expect(w.maxPayload).toBe(2 ** 40);
  });

  it('wrong types give MB_ERR_BAD_BODY', () => {
    const bad: Array<[string, () => unknown]> = [
      ['hello without v', () => decodeHello(p({}))],
      ['hello v not pair', () => decodeHello(p({ v: [1] }))],
      ['hello v strings', () => decodeHello(p({ v: ['1', '1'] }))],
      ['hello v negative', () => decodeHello(p({ v: [-1, 1] }))],
      ['hello v min > max', () => decodeHello(p({ v: [2, 1] }))],
      ['hello token number', () => decodeHello(p({ ...hello, token: 1 }))],
      ['hello echo string', () => decodeHello(p({ ...hello, echo: 'no' }))],
      ['hello empty body', () => decodeHello(new Uint8Array(0))],
      ['welcome v float', () => decodeWelcome(p({ ...welcome, v: 1.5 }))],
      ['welcome node number', () => decodeWelcome(p({ ...welcome, node: 1 }))],
      ['welcome peers not strings', () => decodeWelcome(p({ ...welcome, peers: [1] }))],
      ['welcome missing ping', () => decodeWelcome(p({ ...welcome, ping: undefined }))],
      ['sub q empty', () => decodeSub(p({ q: '' }))],
      ['sub q number', () => decodeSub(p({ q: 5 }))],
      ['sub q too long', () => decodeSub(p({ q: 'x'.repeat(257) }))],
      ['sub slow unknown', () => decodeSub(p({ slow: 'block' }))],
      ['error code string', () => decodeError(p({ code: '1009', message: 'm' }))],
      ['error no message', () => decodeError(p({ code: 1009 }))],
      ['goodbye reconnect string', () => decodeGoodbye(p({ code: 1, reason: 'r', reconnect: 'x' }))],
      ['body is array', () => decodeBody(p([1, 2]))],
      ['body is string', () => decodeBody(p('x'))],
      ['body is bytes', () => decodeBody(p(new Uint8Array(3)))],
      ['body is a timestamp', () => decodeSub(p(new Date(0)))],
      ['body is nil', () => decodeBody(p(null))],
      ['not msgpack', () => decodeBody(new Uint8Array([0xc1]))],
      ['truncated', () => decodeBody(new Uint8Array([0x82, 0xa1]))],
      ['trailing bytes', () => decodeBody(new Uint8Array([0x80, 0x80]))],
    ];
    for (const [what, fn] of bad) expect(code(fn), what).toBe('MB_ERR_BAD_BODY');
  });

  it('property: random bytes give a body or MB_ERR_BAD_BODY, nothing else', () => {
    const decoders = [decodeBody, decodeHello, decodeWelcome, decodeSub, decodeError, decodeGoodbye];
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        for (const d of decoders) {
          const c = code(() => d(b));
          if (c !== undefined) expect(c).toBe('MB_ERR_BAD_BODY');
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('extension block', () => {
  const full: Extension = {
    headers: { a: '1', 'content-type': 'text/plain' },
    reply: '_INBOX.x.1',
    position: { epoch: 'e', offset: 2 ** 40 },
    trace: 'node:1',
  };

  it('round trip, alone and in a frame', () => {
    expect(decodeExtension(encodeExtension(full)!)).toEqual(full);
    for (const ext of [{ reply: 'r' }, { headers: { k: 'v' } }, { position: { epoch: '', offset: 0 } }, { trace: '' }]) {
      expect(decodeExtension(encodeExtension(ext)!)).toEqual(ext);
      const f = decodeFrames(encodeFrame({ type: FrameType.PUB, topic: 't', ext, payload: new Uint8Array([1]) }))[0]!;
      expect(f.ext).toEqual(ext);
      expect(Array.from(f.payload)).toEqual([1]);
    }
  });

  it('nothing to carry encodes to no block', () => {
    expect(encodeExtension(undefined)).toBeUndefined();
    expect(encodeExtension({})).toBeUndefined();
    expect(encodeExtension({ headers: {} })).toBeUndefined();
    const f = decodeFrames(encodeFrame({ type: FrameType.PUB, topic: 't', ext: {} }))[0]!;
    expect(f.extLen).toBe(0);
    expect(f.ext).toBeUndefined();
  });

  it('wire keys are h, r, p, t', () => {
    expect(decodeExtension(p({ h: { x: 'y' }, r: 'R', p: ['E', 3], t: 'T', future: 1 }))).toEqual({
      headers: { x: 'y' },
      reply: 'R',
      position: { epoch: 'E', offset: 3 },
      trace: 'T',
    });
  });

  it('rejects malformed blocks with MB_ERR_BAD_EXTENSION', () => {
    const bad: Uint8Array[] = [
      new Uint8Array([0xc1]),
      new Uint8Array([0x81]),
      p([1]),
      p('x'),
      p(null),
      p(new Date(0)),
      p({ h: { a: 1 } }),
      p({ h: ['a'] }),
      p({ h: 'a' }),
      p({ r: 1 }),
      p({ p: ['e'] }),
      p({ p: [1, 2] }),
      p({ p: ['e', '2'] }),
      p({ p: ['e', -1] }),
      p({ p: ['e', 1.5] }),
      p({ p: ['e', 1, 2] }),
      p({ t: false }),
    ];
    for (const b of bad) expect(code(() => decodeExtension(b)), Array.from(b).join(',')).toBe('MB_ERR_BAD_EXTENSION');
  });

  it('an extension block over 65535 bytes is refused as an encoding error, not a decoding one', () => {
    let err: unknown;
    try {
      encodeExtension({ headers: { big: 'x'.repeat(MAX_EXT) } });
    } catch (e) {
      err = e;
    }
    expect((err as MeshbusError).code).toBe('MB_ERR_INVALID_ARGUMENT');
    expect((err as Error).message).toMatch(/encode to \d+ bytes; an event's extension block holds at most 65535/);
    expect((err as Error).message).not.toMatch(/decod/);
  });

  it('header names and values, reply and trace with a lone surrogate are refused, not sent as U+FFFD', () => {
    for (const ext of [{ headers: { k: 'a\ud83d' } }, { headers: { ['\udc00']: 'v' } }, { reply: 'r.\ud83d' }, { trace: '\ud800' }]) {
      expect(code(() => encodeExtension(ext))).toBe('MB_ERR_INVALID_ARGUMENT');
    }
  });

  it('a frame with a malformed block decodes; reading ext raises MB_ERR_BAD_EXTENSION', () => {
    const bytes = encodeFrame({ type: FrameType.PUB, topic: 't', ext: { reply: 'r' } });
    const f = decodeFrames(bytes)[0]!;
    f.extBytes[0] = 0xc1;
    expect(code(() => f.ext)).toBe('MB_ERR_BAD_EXTENSION');
  });

  it('property: random bytes give an extension or MB_ERR_BAD_EXTENSION', () => {
    assertProperty(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const c = code(() => decodeExtension(b));
        if (c !== undefined) expect(c).toBe('MB_ERR_BAD_EXTENSION');
      }),
      { numRuns: 1000 },
    );
  });
});

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildVectors, expectedFields } from '../vectors/generate.js';
import { FrameDecoder } from '../src/frame-decoder.js';
import { ProtocolError } from '../src/errors.js';
import { crc32c } from '../src/crc32c.js';
import { topicHash } from '../src/topic-hash.js';
import { decodeBody } from '../src/control.js';
import { utf8Encode } from '../src/utf8.js';
import type { Frame } from '../src/frame.js';
import { hex, unhex } from './helpers.js';

const FILE = fileURLToPath(new URL('../vectors/frames.json', import.meta.url));

interface ExpectFrame {
  offset: number;
  size: number;
  type: number;
  typeName: string;
  flags: number;
  hops: number;
  maxHops: number;
  topicHash: number;
  origin: string;
  seq: number;
  timestamp: number;
  correlation: number;
  sid: number;
  topicLen: number;
  extLen: number;
  payloadLen: number;
  topic: string;
  ext: string;
  payload: string;
  body?: unknown;
}
interface ExpectError {
  code: number;
  name: string;
  fatal: boolean;
  stop: number;
}
interface Case {
  name: string;
  hex: string;
  maxFrameLength?: number;
  expect: { frames: ExpectFrame[]; errors: ExpectError[] };
}
interface Vectors {
  crc32c: Array<{ input: string; crc: number }>;
  topicHash: Array<{ topic: string; hash: number }>;
  frames: Array<{ name: string; hex: string; expect: ExpectFrame }>;
  streams: Case[];
  invalid: Case[];
}

const generated = buildVectors();
const text = JSON.stringify(generated, null, 2) + '\n';
if (process.env.UPDATE_VECTORS) writeFileSync(FILE, text);
const committed = readFileSync(FILE, 'utf8');
const vectors = JSON.parse(committed) as Vectors;

function fieldsOf(f: Frame, base: number): ExpectFrame {
  return { ...expectedFields(f), offset: base + f.start } as ExpectFrame;
}

/** Runs the decoder the way a consumer of the vectors would, over the given chunk sizes. */
function decodeCase(bytes: Uint8Array, chunk: number, maxFrameLength?: number) {
  const d = new FrameDecoder(maxFrameLength !== undefined ? { maxFrameLength } : {});
  const frames: Array<Omit<ExpectFrame, 'offset'>> = [];
  const errors: number[] = [];
  const onErr = (e: ProtocolError): void => {
    expect(e).toBeInstanceOf(ProtocolError);
    errors.push(e.num);
  };
  for (let i = 0; i < bytes.length || (i === 0 && bytes.length === 0); i += chunk) {
    d.push(bytes.slice(i, i + chunk), (f) => {
      const { offset: _o, ...rest } = fieldsOf(f, 0);
      frames.push(rest);
    }, onErr);
  }
  d.end(onErr);
  return { frames, errors };
}

describe('test vectors (proto/vectors/frames.json)', () => {
  it('the committed JSON matches what the codec generates (UPDATE_VECTORS=1 to regenerate)', () => {
    expect(committed).toBe(text);
  });

  it('covers every frame type, streams and invalid inputs', () => {
    const types = new Set(vectors.frames.map((f) => f.expect.type));
    expect(types.size).toBe(16);
    expect(vectors.streams.length).toBeGreaterThanOrEqual(3);
    expect(vectors.invalid.length).toBeGreaterThanOrEqual(15);
    for (const c of vectors.invalid) expect(c.expect.errors.length, c.name).toBeGreaterThan(0);
  });

  it('crc32c and topic hash values', () => {
    expect(vectors.crc32c[0]!.crc).toBe(0xe3069283);
    for (const v of vectors.crc32c) expect(crc32c(unhex(v.input))).toBe(v.crc);
    for (const v of vectors.topicHash) expect(topicHash(utf8Encode(v.topic))).toBe(v.hash);
  });

  for (const v of vectors.frames) {
    it(`frame ${v.name}`, () => {
      const bytes = unhex(v.hex);
      for (const chunk of [bytes.length, 1, 7]) {
        const r = decodeCase(bytes, chunk);
        expect(r.errors).toEqual([]);
        const { offset: _o, body, ...want } = v.expect;
        expect(r.frames).toEqual([want]);
      }
      if (v.expect.body !== undefined) {
        const d = new FrameDecoder();
        d.push(bytes, (f) => expect(decodeBody(f.payload)).toEqual(v.expect.body), () => expect.unreachable());
      }
    });
  }

  for (const c of [...vectors.streams, ...vectors.invalid]) {
    it(`stream ${c.name}`, () => {
      const bytes = unhex(c.hex);
      for (const chunk of [Math.max(1, bytes.length), 1, 3, 64, 65]) {
        const r = decodeCase(bytes, chunk, c.maxFrameLength);
        expect(r.frames).toEqual(c.expect.frames.map(({ offset: _o, ...f }) => f));
        expect(r.errors).toEqual(c.expect.errors.map((e) => e.code));
      }
    });
  }
});

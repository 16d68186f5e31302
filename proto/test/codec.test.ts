import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_HOPS,
  FIXED_SIZE,
  Flags,
  FrameType,
  FrameTypeName,
  HEADER_SIZE,
  OFF,
  isKnownType,
} from '../src/constants.js';
import { ClientError, ProtocolError } from '../src/errors.js';
import { encodeFrame, encodeHead } from '../src/frame-encoder.js';
import { decodeFrames } from '../src/frame-decoder.js';
import { checkHeader } from '../src/frame-scanner.js';
import { patchHops, resealHeader, writeHeader } from '../src/header.js';
import { crc32c } from '../src/crc32c.js';
import { topicHash } from '../src/topic-hash.js';
import { decodeBody } from '../src/control.js';
import { readU32 } from '../src/bytes.js';
import { utf8Encode } from '../src/utf8.js';
import { sampleFrames } from '../vectors/generate.js';
import { concat, hex } from './helpers.js';

describe('header layout', () => {
  it('is 4 + 60 = 64 bytes with contiguous fields', () => {
    expect(FIXED_SIZE).toBe(64);
    expect(HEADER_SIZE).toBe(60);
    const sizes: Record<keyof typeof OFF, number> = {
      LENGTH: 4, MAGIC: 2, VERSION: 1, TYPE: 1, FLAGS: 2, HOPS: 1, MAX_HOPS: 1, TOPIC_HASH: 4, ORIGIN: 8, SEQ: 8,
      TIMESTAMP: 8, CORRELATION: 4, TOPIC_LEN: 2, EXT_LEN: 2, PAYLOAD_LEN: 4, SID: 4, RESERVED: 4, CRC: 4,
    };
    let at = 0;
    for (const [k, off] of Object.entries(OFF).sort((a, b) => a[1] - b[1])) {
      expect(off, k).toBe(at);
      at += sizes[k as keyof typeof OFF];
    }
    expect(at).toBe(64);
  });

  it('writes every field big-endian at its offset', () => {
    const b = new Uint8Array(64);
    writeHeader(b, 0, {
      type: FrameType.REQ,
      flags: 3,
      hops: 2,
      maxHops: 9,
      topicHash: 0x01020304,
      origin: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
      seq: 0x0102030405,
      timestamp: 0x0a0b0c0d0e0f,
      correlation: 0xdeadbeef,
      topicLen: 0x0102,
      extLen: 0x0304,
      payloadLen: 0x05060708,
      sid: 0x11223344,
    });
    expect(hex(b)).toBe(
      '05060b4a' + '4d42' + '01' + '11' + '0003' + '02' + '09' + '01020304' + '0102030405060708' + '0000000102030405' +
        '00000a0b0c0d0e0f' + 'deadbeef' + '0102' + '0304' + '05060708' + '11223344' + '00000000' + hex(b.subarray(60)),
    );
    expect(readU32(b, 60)).toBe(crc32c(b, 0, 60));
  });

  it('defaults: max hops 8, zero origin, zero reserved bytes even over a dirty slot', () => {
    const b = new Uint8Array(64).fill(0xee);
    writeHeader(b, 0, { type: FrameType.PING });
    expect(checkHeader(b, 0, 1 << 20)).toBe(0);
    expect(b[OFF.MAX_HOPS]).toBe(DEFAULT_MAX_HOPS);
    expect(hex(b.subarray(OFF.ORIGIN, OFF.ORIGIN + 8))).toBe('0000000000000000');
    expect(hex(b.subarray(OFF.RESERVED, OFF.CRC))).toBe('00000000');
  });

  it('writes at an offset inside a larger buffer', () => {
    const b = new Uint8Array(200);
    writeHeader(b, 100, { type: FrameType.PONG, correlation: 5 });
    expect(checkHeader(b, 100, 1 << 20)).toBe(0);
    expect(b.subarray(0, 100).every((x) => x === 0)).toBe(true);
  });

  it('rejects an origin that is not 8 bytes with a typed error', () => {
    const b = new Uint8Array(64);
    expect(() => writeHeader(b, 0, { type: FrameType.PUB, origin: new Uint8Array(4) })).toThrow(ClientError);
    expect(() => encodeFrame({ type: FrameType.PUB, origin: new Uint8Array(16) })).toThrow(ClientError);
  });

  it('resealHeader and patchHops keep the header valid', () => {
    const f = encodeFrame({ type: FrameType.PUB, topic: 'a.b', payload: new Uint8Array([1]) });
    f[OFF.CORRELATION] = 1;
    expect(checkHeader(f, 0, 1 << 20)).toBe(1007);
    resealHeader(f, 0);
    expect(checkHeader(f, 0, 1 << 20)).toBe(0);
    patchHops(f, 0, 3);
    expect(checkHeader(f, 0, 1 << 20)).toBe(0);
    expect(decodeFrames(f)[0]!.hops).toBe(3);
  });

  it('isKnownType and names cover exactly the 16 types', () => {
    let n = 0;
    for (let t = -1; t < 300; t++) if (isKnownType(t)) n++;
    expect(n).toBe(16);
    for (const [k, v] of Object.entries(FrameType)) expect(FrameTypeName[v]).toBe(k);
  });
});

describe('round trip of every frame type', () => {
  const samples = sampleFrames();
  it('samples cover every frame type', () => {
    expect(new Set(samples.map((s) => s.spec.type))).toEqual(new Set(Object.values(FrameType)));
  });
  for (const { name, spec, body } of samples) {
    it(name, () => {
      const bytes = encodeFrame(spec);
      const [f, ...rest] = decodeFrames(bytes);
      expect(rest).toEqual([]);
      expect(f!.type).toBe(spec.type);
      expect(f!.typeName).toBe(FrameTypeName[spec.type]);
      expect(f!.flags).toBe(spec.flags ?? 0);
      expect(f!.traced).toBe(((spec.flags ?? 0) & Flags.TRACE) !== 0);
      expect(f!.ackRequested).toBe(((spec.flags ?? 0) & Flags.ACK_REQUESTED) !== 0);
      expect(f!.hops).toBe(spec.hops ?? 0);
      expect(f!.maxHops).toBe(spec.maxHops ?? DEFAULT_MAX_HOPS);
      expect(f!.origin).toBe(hex(spec.origin ?? new Uint8Array(8)));
      expect(f!.seq).toBe(spec.seq ?? 0);
      expect(f!.timestamp).toBe(spec.timestamp ?? 0);
      expect(f!.correlation).toBe(spec.correlation ?? 0);
      expect(f!.sid).toBe(spec.sid ?? 0);
      expect(f!.topic).toBe(spec.topic ?? '');
      expect(f!.topicLen).toBe(utf8Encode(spec.topic ?? '').length);
      expect(f!.topicHash).toBe(spec.topic ? topicHash(utf8Encode(spec.topic)) : 0);
      expect(f!.ext).toEqual(spec.ext);
      expect(hex(f!.payload)).toBe(hex(spec.payload ?? new Uint8Array(0)));
      expect(f!.size).toBe(bytes.length);
      expect(hex(f!.bytes)).toBe(hex(bytes));
      if (body) expect(decodeBody(f!.payload)).toEqual(body);
    });
  }

  it('encodeHead + payload as separate chunks equals encodeFrame', () => {
    for (const { spec } of samples) {
      const head = encodeHead(spec);
      expect(hex(concat([head, spec.payload ?? new Uint8Array(0)]))).toBe(hex(encodeFrame(spec)));
      expect(head.length).toBe(encodeFrame(spec).length - (spec.payload?.length ?? 0));
    }
  });

  it('encodeHead rejects an over-long topic with a typed error', () => {
    expect(() => encodeHead({ type: FrameType.PUB, topic: 'x'.repeat(0x10000) })).toThrow(ProtocolError);
  });

  it('large u64 fields survive up to 2^53 - 1', () => {
    const seq = Number.MAX_SAFE_INTEGER;
    const f = decodeFrames(encodeFrame({ type: FrameType.PUB, topic: 't', seq, timestamp: 2 ** 52 + 1 }))[0]!;
    expect(f.seq).toBe(seq);
    expect(f.timestamp).toBe(2 ** 52 + 1);
  });
});

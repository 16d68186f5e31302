/**
 * Builds proto/vectors/frames.json: the fixed test vectors every meshbus
 * implementation (this codec, the native addon, the browser SDK) must pass.
 *
 * Regenerate after an intended wire change with
 *   UPDATE_VECTORS=1 npx vitest run proto/test/vectors.test.ts
 * and commit the JSON; without UPDATE_VECTORS the same test fails when the
 * committed JSON no longer matches what the codec produces.
 */
import { DEFAULT_MAX_FRAME, FIXED_SIZE, Flags, FrameType, FrameTypeName, OFF } from '../src/constants.js';
import { ERROR_CODES, codeFromNumber } from '../src/errors.js';
import { encodeBody } from '../src/control.js';
import { crc32c } from '../src/crc32c.js';
import { encodeFrame, type FrameSpec } from '../src/frame-encoder.js';
import { SCAN_META, SCAN_SLOTS, jsScanner } from '../src/frame-scanner.js';
import { decodeFrames } from '../src/frame-decoder.js';
import { Frame } from '../src/frame.js';
import { resealHeader } from '../src/header.js';
import { topicHash } from '../src/topic-hash.js';
import { utf8Encode } from '../src/utf8.js';
import { concat, hex } from '../test/helpers.js';


const ORIGIN_NODE = new Uint8Array([0x6e, 0x6f, 0x64, 0x65, 0x00, 0x00, 0x00, 0xa1]);
const ORIGIN_CLIENT = new Uint8Array([0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc1]);
const TS = 1_700_000_000_000;
const bytesOf = (s: string): Uint8Array => utf8Encode(s);

export interface NamedSpec {
  name: string;
  note: string;
  spec: FrameSpec;
  /** The msgpack body carried as payload, for control frames. */
  body?: Record<string, unknown>;
}

/** One or more sample frames of every frame type. */
export function sampleFrames(): NamedSpec[] {
  const withBody = (name: string, note: string, spec: FrameSpec, body: Record<string, unknown>): NamedSpec => ({
    name,
    note,
    spec: { ...spec, payload: encodeBody(body) },
    body,
  });
  return [
    withBody('hello', 'client -> node, first frame of a connection', { type: FrameType.HELLO }, {
      v: [1, 1],
      token: 's3cr3t',
      name: 'vectors',
      lang: 'meshbus-node/0.1.0',
      echo: false,
    }),
    withBody('welcome', 'node -> client, answer to HELLO', { type: FrameType.WELCOME, origin: ORIGIN_NODE, timestamp: TS }, {
      v: 1,
      node: '6e6f6465000000a1',
      client: '00000000000000c1',
      maxPayload: 1048576,
      maxTopic: 256,
      ping: 20000,
      peers: ['tcp://10.0.0.2:4480', 'ws://10.0.0.3:4481/'],
    }),
    {
      name: 'auth',
      note: 'node <-> node; body defined in cluster/README.md (opaque here)',
      spec: { type: FrameType.AUTH, payload: bytesOf('opaque-auth-body') },
    },
    {
      name: 'pub',
      note: 'client -> node, plain publish as sent by a client (origin/seq/timestamp left zero)',
      spec: { type: FrameType.PUB, topic: 'orders.eu.created', payload: bytesOf('{"id":42}') },
    },
    {
      name: 'pub-empty-payload',
      note: 'publish with an empty payload',
      spec: { type: FrameType.PUB, topic: 'ping' },
    },
    {
      name: 'pub-ack-headers',
      note: 'publish asking for an ACK (correlation 7) with application headers',
      spec: {
        type: FrameType.PUB,
        topic: 'orders.eu.created',
        flags: Flags.ACK_REQUESTED,
        correlation: 7,
        ext: { headers: { 'content-type': 'application/json', tenant: 'acme' } },
        payload: bytesOf('{"id":43}'),
      },
    },
    {
      name: 'pub-ingress-stamped',
      note: 'node -> subscriber: event stamped at ingress (origin, seq, timestamp), traced, two hops, position in history',
      spec: {
        type: FrameType.PUB,
        topic: 'sensors.lab.temp',
        flags: Flags.TRACE,
        hops: 2,
        maxHops: 8,
        origin: ORIGIN_NODE,
        seq: 0x1_0000_0002,
        timestamp: TS,
        ext: { trace: '6e6f6465000000a1:9', position: { epoch: 'e1', offset: 12 } },
        payload: new Uint8Array([0x00, 0xff, 0x10, 0x80]),
      },
    },
    {
      name: 'pub-queue-delivery',
      note: 'node -> client: queue-group delivery to subscription 5 (sid = 5)',
      spec: { type: FrameType.PUB, topic: 'jobs.resize', origin: ORIGIN_NODE, seq: 3, timestamp: TS, sid: 5, payload: bytesOf('img-1') },
    },
    {
      name: 'pub-utf8-topic',
      note: 'topic with non-ASCII UTF-8',
      spec: { type: FrameType.PUB, topic: 'café.zürich.温度', payload: bytesOf('x') },
    },
    {
      name: 'req',
      note: 'client -> node, request with reply topic and request id 1',
      spec: {
        type: FrameType.REQ,
        topic: 'svc.echo',
        correlation: 1,
        ext: { reply: '_INBOX.00000000000000c1.1' },
        payload: bytesOf('hi'),
      },
    },
    withBody('sub', 'client -> node, subscribe sid 1 to a wildcard pattern in queue group "workers"', {
      type: FrameType.SUB,
      topic: 'orders.*.created',
      correlation: 1,
    }, { q: 'workers', slow: 'drop' }),
    {
      name: 'sub-no-body',
      note: 'client -> node, plain subscription sid 2 to a full wildcard, empty body',
      spec: { type: FrameType.SUB, topic: 'orders.>', correlation: 2 },
    },
    {
      name: 'unsub',
      note: 'client -> node, unsubscribe sid 1',
      spec: { type: FrameType.UNSUB, correlation: 1 },
    },
    {
      name: 'ack',
      note: 'node -> client, ACK of the PUB with correlation 7',
      spec: { type: FrameType.ACK, correlation: 7 },
    },
    withBody('nack', 'node -> client, NACK of the PUB with correlation 7', { type: FrameType.NACK, correlation: 7 }, {
      code: ERROR_CODES.MB_ERR_PERMISSION_DENIED.num,
      message: 'permission denied: orders.eu.created',
    }),
    { name: 'ping', note: 'either direction, PING 3', spec: { type: FrameType.PING, correlation: 3 } },
    { name: 'pong', note: 'answer to PING 3', spec: { type: FrameType.PONG, correlation: 3 } },
    withBody('error', 'node -> client, non-fatal error about SUB sid 9', { type: FrameType.ERROR, correlation: 9 }, {
      code: ERROR_CODES.MB_ERR_BAD_TOPIC.num,
      message: 'invalid topic: empty token in "a..b"',
    }),
    {
      name: 'interest',
      note: 'node <-> node; body defined in cluster/README.md (opaque here)',
      spec: { type: FrameType.INTEREST, origin: ORIGIN_NODE, payload: bytesOf('opaque-interest') },
    },
    {
      name: 'peers',
      note: 'node <-> node; body defined in cluster/README.md (opaque here)',
      spec: { type: FrameType.PEERS, origin: ORIGIN_NODE, payload: bytesOf('opaque-peers') },
    },
    {
      name: 'trace-hop',
      note: 'node -> origin node; body defined in cluster/README.md (opaque here)',
      spec: { type: FrameType.TRACE_HOP, origin: ORIGIN_NODE, correlation: 9, payload: bytesOf('opaque-trace') },
    },
    withBody('goodbye', 'node -> client while draining', { type: FrameType.GOODBYE, origin: ORIGIN_NODE }, {
      code: ERROR_CODES.MB_ERR_DRAINING.num,
      reason: 'node draining',
      reconnect: ['tcp://10.0.0.2:4480'],
    }),
  ];
}

/** Expected fields of a decoded frame, as written to the vectors. */
export function expectedFields(f: Frame): Record<string, unknown> {
  return {
    offset: f.start,
    size: f.size,
    type: f.type,
    typeName: FrameTypeName[f.type],
    flags: f.flags,
    hops: f.hops,
    maxHops: f.maxHops,
    topicHash: f.topicHash,
    origin: f.origin,
    seq: f.seq,
    timestamp: f.timestamp,
    correlation: f.correlation,
    sid: f.sid,
    topicLen: f.topicLen,
    extLen: f.extLen,
    payloadLen: f.payloadLen,
    topic: f.topic,
    ext: hex(f.extBytes),
    payload: hex(f.payload),
  };
}

export interface ScanOutcome {
  frames: Frame[];
  /** Every error in order: numeric code and the stream offset of the frame it concerns. */
  errors: Array<{ code: number; name: string; fatal: boolean; stop: number }>;
}

/**
 * Reference semantics of decoding a complete byte string: scan from the
 * start; a frame over the limit is reported and skipped; a fatal error stops;
 * bytes left over at the end are MB_ERR_TRUNCATED at the start of the
 * incomplete frame.
 */
export function referenceDecode(bytes: Uint8Array, maxFrameLength = DEFAULT_MAX_FRAME): ScanOutcome {
  const out = new Uint32Array(SCAN_META + 64 * SCAN_SLOTS);
  const res: ScanOutcome = { frames: [], errors: [] };
  let pos = 0;
  const err = (num: number, stop: number): void => {
    const name = codeFromNumber(num);
    res.errors.push({ code: num, name, fatal: ERROR_CODES[name].fatal, stop });
  };
  while (pos < bytes.length) {
    const count = jsScanner.scan(bytes, pos, bytes.length, maxFrameLength, out);
    for (let i = 0; i < count; i++) {
      const o = SCAN_META + i * SCAN_SLOTS;
      const s = out[o]!;
      res.frames.push(new Frame(bytes, s, s + out[o + 1]!));
    }
    const stop = out[1]!;
    const e = out[2]!;
    if (e === ERROR_CODES.MB_ERR_FRAME_TOO_LARGE.num) {
      err(e, stop);
      pos = stop + out[3]! + 4;
      if (pos > bytes.length) {
        err(ERROR_CODES.MB_ERR_TRUNCATED.num, stop);
        break;
      }
      continue;
    }
    if (e !== 0) {
      err(e, stop);
      break;
    }
    if (count === 0 || stop === bytes.length) {
      if (stop < bytes.length) err(ERROR_CODES.MB_ERR_TRUNCATED.num, stop);
      break;
    }
    pos = stop;
  }
  return res;
}

function frameOf(spec: FrameSpec): Uint8Array {
  return encodeFrame(spec);
}

/** A copy of `frame` with `mutate` applied, resealed unless `reseal` is false. */
function mutated(frame: Uint8Array, mutate: (b: Uint8Array) => void, reseal = true): Uint8Array {
  const b = frame.slice();
  mutate(b);
  if (reseal) resealHeader(b, 0);
  return b;
}

const cat = (...parts: Uint8Array[]): Uint8Array => concat(parts);

export interface InvalidCase {
  name: string;
  note: string;
  bytes: Uint8Array;
  maxFrameLength?: number;
}

export function invalidCases(): InvalidCase[] {
  const pub = frameOf({ type: FrameType.PUB, topic: 'a.b', correlation: 1, payload: bytesOf('payload') });
  const ping = frameOf({ type: FrameType.PING, correlation: 2 });
  const big = frameOf({ type: FrameType.PUB, topic: 'big', payload: new Uint8Array(200).fill(0x5a) });
  return [
    { name: 'bad-magic', note: 'first two header bytes are not "MB"', bytes: mutated(pub, (b) => (b[OFF.MAGIC] = 0x4e), false) },
    {
      name: 'bad-magic-6-bytes',
      note: 'only 6 bytes received; the magic is checked as soon as it is present',
      bytes: mutated(pub, (b) => (b[OFF.MAGIC + 1] = 0x00), false).subarray(0, 6),
    },
    { name: 'bad-magic-and-crc', note: 'magic is checked before the CRC', bytes: mutated(pub, (b) => ((b[OFF.MAGIC] = 0), (b[OFF.CRC] ^= 1)), false) },
    { name: 'bad-crc', note: 'correlation changed without resealing', bytes: mutated(pub, (b) => (b[OFF.CORRELATION + 3] = 9), false) },
    { name: 'bad-crc-field', note: 'CRC field itself corrupted', bytes: mutated(pub, (b) => (b[OFF.CRC + 3] ^= 0x80), false) },
    { name: 'bad-crc-before-version', note: 'version changed without resealing: the CRC is checked first', bytes: mutated(pub, (b) => (b[OFF.VERSION] = 2), false) },
    { name: 'unsupported-version-2', note: 'version 2, CRC resealed', bytes: mutated(pub, (b) => (b[OFF.VERSION] = 2)) },
    { name: 'unsupported-version-0', note: 'version 0, CRC resealed', bytes: mutated(pub, (b) => (b[OFF.VERSION] = 0)) },
    { name: 'unknown-type', note: 'type 0x7f, CRC resealed', bytes: mutated(pub, (b) => (b[OFF.TYPE] = 0x7f)) },
    { name: 'unknown-type-zero', note: 'type 0x00, CRC resealed', bytes: mutated(pub, (b) => (b[OFF.TYPE] = 0x00)) },
    { name: 'reserved-flag-bit', note: 'flag bit 15 set, CRC resealed', bytes: mutated(pub, (b) => (b[OFF.FLAGS] = 0x80)) },
    { name: 'reserved-flag-bit-2', note: 'flag bit 2 set, CRC resealed', bytes: mutated(pub, (b) => (b[OFF.FLAGS + 1] = 0x04)) },
    { name: 'reserved-byte', note: 'reserved byte at offset 59 not zero, CRC resealed', bytes: mutated(pub, (b) => (b[OFF.CRC - 1] = 1)) },
    {
      name: 'type-before-reserved',
      note: 'unknown type and reserved flag: the type is checked first',
      bytes: mutated(pub, (b) => ((b[OFF.TYPE] = 0xee), (b[OFF.FLAGS] = 0xff))),
    },
    {
      name: 'length-prefix-mismatch',
      note: 'length prefix one more than 60 + topic + ext + payload (one extra byte follows), resealed',
      bytes: cat(mutated(pub, (b) => (b[OFF.LENGTH + 3] += 1)), new Uint8Array([0])),
    },
    {
      name: 'payload-length-mismatch',
      note: 'payload length field one less than the bytes present, resealed',
      bytes: mutated(pub, (b) => (b[OFF.PAYLOAD_LEN + 3] -= 1)),
    },
    {
      name: 'length-below-header',
      note: 'length prefix 0 with all lengths 0, resealed',
      bytes: mutated(ping, (b) => (b[OFF.LENGTH + 3] = 0)),
    },
    {
      name: 'too-large-then-valid',
      note: 'a frame over maxFrameLength 128 is skipped (non-fatal) and the next frame decoded',
      bytes: cat(ping, big, pub),
      maxFrameLength: 128,
    },
    {
      name: 'too-large-truncated',
      note: 'a frame over the limit whose bytes end early: skipped, then MB_ERR_TRUNCATED at end of stream',
      bytes: cat(big.subarray(0, 100)),
      maxFrameLength: 128,
    },
    { name: 'truncated-in-payload', note: 'the last byte of the frame is missing', bytes: pub.subarray(0, pub.length - 1) },
    { name: 'truncated-in-header', note: '10 bytes of a valid frame', bytes: pub.subarray(0, 10) },
    { name: 'truncated-in-prefix', note: '3 bytes: the stream ends inside the length prefix', bytes: pub.subarray(0, 3) },
    { name: 'valid-then-bad-crc', note: 'one good frame, then a frame with a bad CRC', bytes: cat(ping, mutated(pub, (b) => (b[OFF.SEQ] = 1), false)) },
    { name: 'valid-then-garbage', note: 'one good frame, then zero bytes', bytes: cat(pub, new Uint8Array(70)) },
    { name: 'error-stops-stream', note: 'after a fatal error nothing more is decoded', bytes: cat(mutated(pub, (b) => (b[OFF.VERSION] = 9)), ping) },
  ];
}

/** A deterministic stream of several frames of different types. */
export function streamCases(): Array<{ name: string; note: string; bytes: Uint8Array }> {
  const s = sampleFrames().map((x) => frameOf(x.spec));
  const by = (n: string): Uint8Array => frameOf(sampleFrames().find((x) => x.name === n)!.spec);
  return [
    { name: 'empty', note: 'no bytes: no frames, no error', bytes: new Uint8Array(0) },
    { name: 'session', note: 'HELLO, SUB, PUB, PING as a client sends them', bytes: cat(by('hello'), by('sub'), by('pub'), by('ping')) },
    { name: 'all-types', note: 'every sample frame back to back', bytes: cat(...s) },
    { name: 'header-only-run', note: 'header-only frames back to back', bytes: cat(by('ping'), by('pong'), by('ack'), by('unsub')) },
  ];
}

export function buildVectors(): Record<string, unknown> {
  const check = bytesOf('123456789');
  return {
    description:
      'meshbus wire protocol v1 test vectors; see proto/vectors/README.md. Generated by proto/vectors/generate.ts: do not edit by hand.',
    version: 1,
    defaultMaxFrameLength: DEFAULT_MAX_FRAME,
    crc32c: [
      { input: hex(check), ascii: '123456789', crc: crc32c(check) },
      { input: '', ascii: '', crc: crc32c(new Uint8Array(0)) },
      { input: hex(new Uint8Array(32)), ascii: null, crc: crc32c(new Uint8Array(32)) },
      { input: hex(new Uint8Array(32).fill(0xff)), ascii: null, crc: crc32c(new Uint8Array(32).fill(0xff)) },
    ],
    topicHash: ['', 'a', 'orders.eu.created', 'café.zürich.温度'].map((t) => ({ topic: t, hash: topicHash(bytesOf(t)) })),
    frames: sampleFrames().map((x) => {
      const bytes = frameOf(x.spec);
      const f = decodeFrames(bytes)[0]!;
      return {
        name: x.name,
        note: x.note,
        hex: hex(bytes),
        expect: { ...expectedFields(f), ...(x.body ? { body: x.body } : {}) },
      };
    }),
    streams: streamCases().map((c) => {
      const r = referenceDecode(c.bytes);
      return { name: c.name, note: c.note, hex: hex(c.bytes), expect: { frames: r.frames.map(expectedFields), errors: r.errors } };
    }),
    invalid: invalidCases().map((c) => {
      const r = referenceDecode(c.bytes, c.maxFrameLength);
      return {
        name: c.name,
        note: c.note,
        hex: hex(c.bytes),
        ...(c.maxFrameLength !== undefined ? { maxFrameLength: c.maxFrameLength } : {}),
        expect: { frames: r.frames.map(expectedFields), errors: r.errors },
      };
    }),
  };
}

export { FIXED_SIZE };

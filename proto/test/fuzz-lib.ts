/**
 * Shared by the fuzz campaigns (proto/test/fuzz-*.test.ts,
 * native/test/fuzz-*.test.ts, core/test/fuzz-*.test.ts): stream generators,
 * chunkers, an independent whole-stream model of SPEC.md section 9, and the
 * regression corpus in proto/test/corpus/*.hex.
 *
 * Campaign size: FUZZ_RUNS (default: a CI-sized number per property).
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  DEFAULT_MAX_FRAME,
  FIXED_SIZE,
  FrameType,
  OFF,
  checkHeader,
  crc32c,
  encodeBody,
  resealHeader,
  topicHash,
  writeHeader,
  type ErrorCode,
} from '../src/index.js';
import { codeFromNumber } from '../src/errors.js';
import { concat, hex, unhex, type RunResult } from './helpers.js';

/** Property runs per campaign: FUZZ_RUNS when set, else `ci`. */
export function fuzzRuns(ci: number): number {
  const v = Number(process.env['FUZZ_RUNS'] ?? '');
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : ci;
}

/** Per-campaign counters, printed at the end of each campaign (and summed in RELIABILITY.md). */
export class Tally {
  inputs = 0;
  executions = 0;
  bytes = 0;
  readonly codes = new Map<string, number>();
  constructor(readonly name: string) {}
  note(r: RunResult): void {
    for (const e of r.errors) this.codes.set(e.code, (this.codes.get(e.code) ?? 0) + 1);
  }
  print(ms: number): void {
    const codes = [...this.codes].sort().map(([c, n]) => `${c}=${n}`).join(' ');
    console.log(`[fuzz] ${this.name}: ${this.inputs} inputs, ${this.executions} executions, ${this.bytes} bytes in ${(ms / 1000).toFixed(1)} s; errors seen: ${codes || 'none'}`);
  }
}

const enc = new TextEncoder();
const KNOWN_TYPES = Object.values(FrameType) as number[];


/** One valid frame. */
export function buildFrame(o: {
  type: number;
  flags?: number;
  topic?: Uint8Array;
  ext?: Uint8Array;
  payload?: Uint8Array;
  correlation?: number;
  sid?: number;
  seq?: number;
  hops?: number;
}): Uint8Array {
  const topic = o.topic ?? new Uint8Array(0);
  const ext = o.ext ?? new Uint8Array(0);
  const payload = o.payload ?? new Uint8Array(0);
  const buf = new Uint8Array(FIXED_SIZE + topic.length + ext.length + payload.length);
  writeHeader(buf, 0, {
    type: o.type as FrameType,
    flags: o.flags ?? 0,
    hops: o.hops ?? 0,
    topicHash: topic.length ? topicHash(topic) : 0,
    seq: o.seq ?? 0,
    correlation: o.correlation ?? 0,
    sid: o.sid ?? 0,
    topicLen: topic.length,
    extLen: ext.length,
    payloadLen: payload.length,
  });
  buf.set(topic, FIXED_SIZE);
  buf.set(ext, FIXED_SIZE + topic.length);
  buf.set(payload, FIXED_SIZE + topic.length + ext.length);
  return buf;
}

const writeU32 = (b: Uint8Array, at: number, v: number): void => {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
};

/**
 * Header mutations. "Sealed" ones recompute the CRC so a later check of the
 * validation order is reached; the others leave it stale.
 */
export const MUTATIONS = [
  'none', 'flipBit', 'setByte', 'truncate', 'crc', 'magic', 'version', 'type', 'flags', 'reserved',
  'lengthOff', 'huge', 'tooLarge', 'short', 'partsOff', 'garbage', 'zeroes',
] as const;
export type Mutation = (typeof MUTATIONS)[number];

export function mutate(f: Uint8Array, m: Mutation, a: number, b: number): Uint8Array {
  const out = f.slice();
  const hdr = (at: number, v: number): void => {
    out[at] = v & 0xff;
    resealHeader(out, 0);
  };
  switch (m) {
    case 'none':
      return out;
    case 'flipBit':
      out[a % out.length]! ^= 1 << (b & 7);
      return out;
    case 'setByte':
      out[a % out.length] = b & 0xff;
      return out;
    case 'truncate':
      return out.subarray(0, a % out.length);
    case 'crc':
      out[OFF.CRC + (a & 3)]! ^= 1 + (b % 255);
      return out;
    case 'magic':
      out[OFF.MAGIC + (a & 1)]! ^= 1 + (b % 255);
      resealHeader(out, 0);
      return out;
    case 'version':
      hdr(OFF.VERSION, b === 1 ? 0 : b);
      return out;
    case 'type': {
      let t = b & 0xff;
      if (KNOWN_TYPES.includes(t)) t = 0xff;
      hdr(OFF.TYPE, t);
      return out;
    }
    case 'flags':
      out[OFF.FLAGS] = (b >> 8) | 0x80;
      hdr(OFF.FLAGS + 1, b);
      return out;
    case 'reserved':
      hdr(OFF.RESERVED + (a & 3), b | 1);
      return out;
    case 'lengthOff':
      writeU32(out, 0, (out.length - 4 + ((b % 64) - 32 || 1)) >>> 0);
      resealHeader(out, 0);
      return out;
    case 'huge': {
      // Consistent lengths claiming up to 4 GiB: too large, or pending forever.
      const len = (0xffffffff - (b & 0xffff)) >>> 0;
      writeU32(out, 0, len);
      const tl = (out[OFF.TOPIC_LEN]! << 8) | out[OFF.TOPIC_LEN + 1]!;
      const el = (out[OFF.EXT_LEN]! << 8) | out[OFF.EXT_LEN + 1]!;
      writeU32(out, OFF.PAYLOAD_LEN, (len - 60 - tl - el) >>> 0);
      resealHeader(out, 0);
      return out;
    }
    case 'tooLarge': {
      // Consistent lengths just over (or around) a small decoder limit, with the bytes present.
      const extra = 1 + (b % 300);
      const grown = new Uint8Array(out.length + extra);
      grown.set(out);
      writeU32(grown, 0, grown.length - 4);
      const pl = ((out[OFF.PAYLOAD_LEN]! << 24) | (out[OFF.PAYLOAD_LEN + 1]! << 16) | (out[OFF.PAYLOAD_LEN + 2]! << 8) | out[OFF.PAYLOAD_LEN + 3]!) >>> 0;
      writeU32(grown, OFF.PAYLOAD_LEN, pl + extra);
      resealHeader(grown, 0);
      return grown;
    }
    case 'short':
      writeU32(out, 0, a % 60);
      resealHeader(out, 0);
      return out;
    case 'partsOff':
      out[OFF.TOPIC_LEN + (a % 8)]! ^= 1 + (b % 255);
      resealHeader(out, 0);
      return out;
    case 'garbage':
      return out.map((x, i) => (x * 131 + i * (b | 1) + a) & 0xff);
    case 'zeroes':
      return new Uint8Array(out.length);
  }
}

const utf8Topic = fc.oneof(
  fc.constantFrom('a', 'a.b', 'orders.eu.created', '_INBOX.0123456789abcdef.1', 'a.*', '>', 'a.>', '', 'a..b', 'x y', '\u00e9t\u00e9.\u{1F600}'),
  fc.string({ maxLength: 40 }),
);

const msgpackish = fc.oneof(
  fc.constant(new Uint8Array(0)),
  fc.uint8Array({ maxLength: 64 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => {
    try {
      return encodeBody(typeof v === 'object' && v !== null ? v : { v });
    } catch {
      return new Uint8Array([0xc1]);
    }
  }),
);

/** One frame: valid (any type, random body bytes) or broken by one mutation. */
export const frameArb = fc
  .record({
    type: fc.oneof({ arbitrary: fc.constantFrom(...KNOWN_TYPES), weight: 9 }, { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 }),
    flags: fc.oneof({ arbitrary: fc.integer({ min: 0, max: 3 }), weight: 9 }, { arbitrary: fc.integer({ min: 0, max: 0xffff }), weight: 1 }),
    topic: fc.oneof(utf8Topic.map((s) => enc.encode(s)), fc.uint8Array({ maxLength: 24 })),
    ext: fc.oneof({ arbitrary: fc.constant(new Uint8Array(0)), weight: 4 }, { arbitrary: msgpackish, weight: 1 }),
    payload: fc.oneof(
      { arbitrary: msgpackish, weight: 6 },
      { arbitrary: fc.nat(3000).map((n) => new Uint8Array(n).fill(n & 0xff)), weight: 2 },
    ),
    correlation: fc.nat(),
    sid: fc.oneof(fc.constant(0), fc.nat()),
    mutation: fc.oneof({ arbitrary: fc.constant<Mutation>('none'), weight: 10 }, { arbitrary: fc.constantFrom(...MUTATIONS), weight: 5 }),
    a: fc.nat(),
    b: fc.nat(0xffff),
  })
  .map((r) => mutate(buildFrame(r), r.mutation, r.a, r.b));

/** A byte stream: frames, then optional garbage, optional byte flips anywhere. */
export const streamArb = fc
  .record({
    frames: fc.array(frameArb, { maxLength: 10 }),
    tail: fc.oneof({ arbitrary: fc.constant(new Uint8Array(0)), weight: 6 }, { arbitrary: fc.uint8Array({ maxLength: 100 }), weight: 1 }),
    flips: fc.oneof({ arbitrary: fc.constant([] as Array<[number, number]>), weight: 4 }, { arbitrary: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }), weight: 1 }),
  })
  .map(({ frames, tail, flips }) => {
    const s = concat([...frames, tail]);
    for (const [at, x] of flips) if (s.length) s[at % s.length]! ^= x;
    return s;
  });

/** The decoder limit: the default, or a small one so oversized frames (and their skipping) are common. */
export const maxFrameArb = fc.oneof(
  { arbitrary: fc.constant(DEFAULT_MAX_FRAME), weight: 3 },
  { arbitrary: fc.integer({ min: 60, max: 4000 }), weight: 2 },
);

/** How to cut a stream: random cuts, one byte at a time, or cuts near the 6- and 64-byte marks of each frame. */
export const cutterArb = fc.oneof(
  fc.array(fc.nat(), { maxLength: 12 }).map((xs) => ({ kind: 'random' as const, xs })),
  fc.constant({ kind: 'bytes' as const, xs: [] as number[] }),
  fc.array(fc.integer({ min: 1, max: 70 }), { minLength: 1, maxLength: 8 }).map((xs) => ({ kind: 'steps' as const, xs })),
);
export type Cutter = { kind: 'random' | 'bytes' | 'steps'; xs: number[] };

/** Cuts `s` into chunks, each a copy in its own ArrayBuffer (as sockets hand them out). */
export function cut(s: Uint8Array, c: Cutter): Uint8Array[] {
  const points: number[] = [];
  if (c.kind === 'bytes') for (let i = 1; i < s.length; i++) points.push(i);
  else if (c.kind === 'random') points.push(...c.xs.map((x) => (s.length ? x % (s.length + 1) : 0)));
  else for (let p = 0, i = 0; p < s.length; i++) points.push((p += c.xs[i % c.xs.length]!));
  const sorted = [...new Set(points)].filter((p) => p > 0 && p < s.length).sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...sorted, s.length]) {
    out.push(s.slice(prev, p));
    prev = p;
  }
  if (out.length === 0) out.push(new Uint8Array(0));
  return out;
}

export interface ModelResult {
  /** [start, size] of each frame, in stream offsets. */
  frames: Array<[number, number]>;
  errors: ErrorCode[];
}

/**
 * SPEC.md section 9 on a whole stream, written straight from the text and
 * independent of the streaming decoder: frames in order; magic checked at 6
 * bytes; the header checks (checkHeader, the reference order) at 64; an
 * oversized frame is reported and its length + 4 bytes skipped; anything left
 * incomplete at the end is MB_ERR_TRUNCATED.
 */
export function model(s: Uint8Array, maxFrameLength: number): ModelResult {
  const res: ModelResult = { frames: [], errors: [] };
  let p = 0;
  const n = s.length;
  while (p < n) {
    const avail = n - p;
    if (avail >= 6 && ((s[p + 4]! << 8) | s[p + 5]!) !== 0x4d42) {
      res.errors.push('MB_ERR_BAD_MAGIC');
      return res;
    }
    if (avail < FIXED_SIZE) {
      res.errors.push('MB_ERR_TRUNCATED');
      return res;
    }
    const err = checkHeader(s, p, maxFrameLength);
    const size = (((s[p]! << 24) | (s[p + 1]! << 16) | (s[p + 2]! << 8) | s[p + 3]!) >>> 0) + 4;
    if (err !== 0 && err !== 1006) {
      res.errors.push(codeFromNumber(err));
      return res;
    }
    if (err === 1006) res.errors.push('MB_ERR_FRAME_TOO_LARGE');
    if (size > avail) {
      res.errors.push('MB_ERR_TRUNCATED');
      return res;
    }
    if (err === 0) res.frames.push([p, size]);
    p += size;
  }
  return res;
}

/** Compares a decoder run with the model; returns a description of the first difference, or undefined. */
export function diffFromModel(s: Uint8Array, r: RunResult, m: ModelResult): string | undefined {
  if (r.thrown.length) return `threw: ${String(r.thrown[0])}`;
  const codes = r.errors.map((e) => e.code);
  if (codes.join() !== m.errors.join()) return `errors ${codes.join()} != model ${m.errors.join()}`;
  if (r.frames.length !== m.frames.length) return `${r.frames.length} frames != model ${m.frames.length}`;
  for (let i = 0; i < m.frames.length; i++) {
    const [at, size] = m.frames[i]!;
    if (r.frames[i]!.bytes !== hex(s.subarray(at, at + size))) return `frame ${i} bytes differ from stream[${at}, ${at + size})`;
  }
  return undefined;
}

// ---- corpus ----

export const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));

export interface CorpusEntry {
  name: string;
  note: string;
  bytes: Uint8Array;
  maxFrameLength: number;
  /** Expected error codes, in order (empty: none). */
  errors: string[];
  frames: number;
}

/**
 * Corpus file format: `# note` lines, `# max: N` (decoder limit, default the
 * spec's), `# expect: frames=N errors=CODE,CODE` and the stream in hex
 * (whitespace ignored).
 */
export function loadCorpus(): CorpusEntry[] {
  return readdirSync(CORPUS_DIR)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((name) => {
      const text = readFileSync(CORPUS_DIR + name, 'utf8');
      const notes: string[] = [];
      let max = DEFAULT_MAX_FRAME;
      let frames = -1;
      let errors: string[] = [];
      let data = '';
      for (const line of text.split('\n')) {
        const t = line.trim();
        if (t.startsWith('#')) {
          const body = t.slice(1).trim();
          let m: RegExpMatchArray | null;
          if ((m = body.match(/^max:\s*(\d+)/))) max = Number(m[1]);
          else if ((m = body.match(/^expect:\s*frames=(\d+)\s+errors=(\S*)/))) {
            frames = Number(m[1]);
            errors = m[2] && m[2] !== '-' ? m[2].split(',') : [];
          } else notes.push(body);
        } else data += t.replace(/\s+/g, '');
      }
      if (frames < 0) throw new Error(`corpus ${name}: no "# expect:" line`);
      return { name, note: notes.join(' '), bytes: unhex(data), maxFrameLength: max, errors, frames };
    });
}

/** Saves a failing or odd input to the corpus (expectations from the model) and returns its file name. */
export function saveToCorpus(prefix: string, s: Uint8Array, maxFrameLength: number, note: string): string {
  const m = model(s, maxFrameLength);
  const name = `${prefix}-${createHash('sha256').update(s).digest('hex').slice(0, 12)}.hex`;
  const lines = [
    `# ${note}`,
    `# max: ${maxFrameLength}`,
    `# expect: frames=${m.frames.length} errors=${m.errors.join(',') || '-'}`,
    ...(hex(s).match(/.{1,64}/g) ?? []),
  ];
  writeFileSync(CORPUS_DIR + name, lines.join('\n') + '\n');
  return name;
}

/** CRC32C sanity for the corpus writer's frames. */
export const crcOf = (b: Uint8Array): number => crc32c(b, 0, 60);

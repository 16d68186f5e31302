/**
 * The shared wire vectors of @meshbus/proto (proto/vectors/frames.json)
 * through every implementation: CRC32C and topic hash values, and the
 * scanner's view of every frame, stream and invalid case, whole and split
 * at every byte.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SCAN_META, SCAN_SLOTS } from '@meshbus/proto';
import { jsOps } from '../src/index.js';
import { impls } from './helpers.js';

interface ExpectFrame {
  offset: number;
  size: number;
  type: number;
  flags: number;
  topicHash: number;
}
interface Case {
  name: string;
  hex: string;
  maxFrameLength?: number;
  expect: { frames: ExpectFrame[]; errors: Array<{ code: number; stop: number }> };
}
interface Vectors {
  defaultMaxFrameLength: number;
  crc32c: Array<{ input: string; crc: number }>;
  topicHash: Array<{ topic: string; hash: number }>;
  frames: Array<{ name: string; hex: string; expect: ExpectFrame }>;
  streams: Case[];
  invalid: Case[];
}

const V = JSON.parse(readFileSync(fileURLToPath(new URL('../../proto/vectors/frames.json', import.meta.url)), 'utf8')) as Vectors;
const unhex = (h: string): Uint8Array => Uint8Array.from(h.match(/../g) ?? [], (b) => parseInt(b, 16));
const SCANNER_CODES = new Set([1001, 1002, 1003, 1004, 1005, 1006, 1007]);

/** All cases as streams: single frames become one-frame streams. */
const cases: Case[] = [
  ...V.frames.map((f) => ({ name: `frame ${f.name}`, hex: f.hex, expect: { frames: [f.expect], errors: [] } })),
  ...V.streams.map((c) => ({ ...c, name: `stream ${c.name}` })),
  ...V.invalid.map((c) => ({ ...c, name: `invalid ${c.name}` })),
];

/**
 * What one scan of the whole buffer must report: the frames before the first
 * error, then stop there. The decoder's TRUNCATED is not a scanner error (the
 * scanner just waits for more bytes); frames a decoder reaches by skipping a
 * too-large frame come from later scans.
 */
function expectedScan(c: Case, len: number): { meta: number[]; frames: number[][] } {
  const first = c.expect.errors[0];
  const stop = first ? first.stop : len;
  const frames = c.expect.frames.filter((f) => f.offset < stop).map((f) => [f.offset, f.size, f.type | (f.flags << 8), f.topicHash]);
  const code = first && SCANNER_CODES.has(first.code) ? first.code : 0;
  return { meta: [frames.length, stop, code], frames };
}

describe('proto/vectors/frames.json', () => {
  it('has cases', () => {
    expect(cases.length).toBeGreaterThan(20);
    expect(V.crc32c.length).toBeGreaterThan(0);
  });

  for (const impl of impls) {
    describe(impl.name, () => {
      it('crc32c vectors', () => {
        for (const v of V.crc32c) expect(impl.crc32c(unhex(v.input))).toBe(v.crc);
      });

      it('topicHash vectors', () => {
        for (const v of V.topicHash) expect(impl.topicHash(new TextEncoder().encode(v.topic))).toBe(v.hash);
      });

      for (const c of cases) {
        it(`scan: ${c.name}`, () => {
          const buf = unhex(c.hex);
          const max = c.maxFrameLength ?? V.defaultMaxFrameLength;
          const out = new Uint32Array(SCAN_META + SCAN_SLOTS * 64);
          const n = impl.scanner.scan(buf, 0, buf.length, max, out);
          const want = expectedScan(c, buf.length);
          expect(n).toBe(want.frames.length);
          expect(Array.from(out.subarray(0, 3))).toEqual(want.meta);
          for (let i = 0; i < n; i++) expect(Array.from(out.subarray(4 + 4 * i, 8 + 4 * i))).toEqual(want.frames[i]);
          // Same bytes split at every position: identical to the reference scanner.
          if (impl !== jsOps) {
            for (let cut = 0; cut <= buf.length; cut++) {
              for (const [s, e] of [
                [0, cut],
                [cut, buf.length],
              ] as const) {
                const a = new Uint32Array(SCAN_META + SCAN_SLOTS * 8).fill(0x5a5a5a5a);
                const b = a.slice();
                expect(impl.scanner.scan(buf, s, e, max, a)).toBe(jsOps.scanner.scan(buf, s, e, max, b));
                expect(a).toEqual(b);
              }
            }
          }
        });
      }
    });
  }
});

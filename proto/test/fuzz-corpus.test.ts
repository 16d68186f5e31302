/**
 * Regression corpus: every proto/test/corpus/*.hex stream (odd inputs found
 * by the fuzz campaigns or written by hand for the edges of SPEC.md section
 * 9) replayed through the TypeScript decoder whole, one byte at a time and
 * at every single cut point; each run must give the recorded frames and
 * errors. native/test/fuzz-corpus.test.ts replays the same files through the
 * native scanner.
 *
 * FUZZ_SEED_CORPUS=1 (re)writes the hand-made seed files.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME, FIXED_SIZE, FrameType, OFF, resealHeader } from '../src/index.js';
import { concat, run } from './helpers.js';
import { buildFrame, cut, diffFromModel, loadCorpus, model, mutate, saveToCorpus } from './fuzz-lib.js';

if (process.env['FUZZ_SEED_CORPUS'] === '1') writeSeeds();

const corpus = loadCorpus();

describe('fuzz corpus replayed through the TS decoder', () => {
  it('has entries', () => expect(corpus.length).toBeGreaterThan(10));
  for (const e of corpus) {
    it(`${e.name}: ${e.note.slice(0, 80)}`, () => {
      const m = model(e.bytes, e.maxFrameLength);
      expect({ frames: m.frames.length, errors: m.errors }).toEqual({ frames: e.frames, errors: e.errors });
      const chunkings = [[e.bytes], cut(e.bytes, { kind: 'bytes', xs: [] })];
      const step = Math.max(1, Math.floor(e.bytes.length / 300));
      for (let p = 1; p < e.bytes.length; p += step) chunkings.push(cut(e.bytes, { kind: 'random', xs: [p] }));
      for (const chunks of chunkings) {
        const d = diffFromModel(e.bytes, run(chunks, { maxFrameLength: e.maxFrameLength }), m);
        expect(d, `chunks ${chunks.map((c) => c.length).join(',')}`).toBeUndefined();
      }
    });
  }
});

function writeSeeds(): void {
  const enc = new TextEncoder();
  const pub = (payload = 9, topic = 'orders.eu.created'): Uint8Array =>
    buildFrame({ type: FrameType.PUB, topic: enc.encode(topic), payload: new Uint8Array(payload).fill(0x61), correlation: 7 });
  const ping = buildFrame({ type: FrameType.PING, correlation: 1 });
  const seeds: Array<[string, Uint8Array, number, string]> = [
    ['seed-empty', new Uint8Array(0), DEFAULT_MAX_FRAME, 'empty stream'],
    ['seed-header-only', ping, DEFAULT_MAX_FRAME, 'a 64-byte frame (no topic, ext or payload)'],
    ['seed-five-bytes', ping.subarray(0, 5), DEFAULT_MAX_FRAME, '5 bytes: magic not yet checkable, truncated at end'],
    ['seed-bad-magic-at-6', mutate(ping, 'magic', 0, 7).subarray(0, 6), DEFAULT_MAX_FRAME, 'bad magic reported from 6 bytes, before the header is complete'],
    ['seed-two-then-crc', concat([pub(), ping, mutate(pub(), 'crc', 1, 3)]), DEFAULT_MAX_FRAME, 'two frames, then a CRC failure'],
    ['seed-short-length', mutate(ping, 'short', 12, 0), DEFAULT_MAX_FRAME, 'length field below 60 with a valid CRC'],
    ['seed-huge-length', mutate(pub(), 'huge', 0, 0), DEFAULT_MAX_FRAME, 'consistent lengths claiming 4 GiB: too large, skip past the end'],
    ['seed-huge-length-maxlimit', mutate(pub(), 'huge', 0, 0), 0xffffffff, 'consistent 4 GiB claim under a 4 GiB limit: pending forever, truncated'],
    ['seed-too-large-then-valid', concat([pub(200), ping, pub(3)]), 200, 'an oversized frame is skipped (bytes present) and decoding resumes'],
    ['seed-too-large-at-end', concat([ping, pub(500).subarray(0, 300)]), 200, 'an oversized frame cut short: too large, then truncated'],
    ['seed-reserved-bytes', mutate(ping, 'reserved', 2, 4), DEFAULT_MAX_FRAME, 'reserved bytes 56-59 non-zero'],
    ['seed-reserved-flags', mutate(ping, 'flags', 0, 0x8004), DEFAULT_MAX_FRAME, 'reserved flag bits'],
    ['seed-version-0', mutate(ping, 'version', 0, 0), DEFAULT_MAX_FRAME, 'version 0'],
    ['seed-type-ff', mutate(ping, 'type', 0, 0xff), DEFAULT_MAX_FRAME, 'unknown type 0xff'],
    ['seed-parts-mismatch', mutate(pub(), 'partsOff', 4, 1), DEFAULT_MAX_FRAME, 'payloadLen disagrees with length'],
    ['seed-crc-vs-magic', (() => { const f = mutate(ping, 'magic', 1, 2); f[OFF.CRC] ^= 1; return f; })(), DEFAULT_MAX_FRAME, 'bad magic and bad CRC: magic wins'],
    ['seed-crc-vs-version', (() => { const f = mutate(ping, 'version', 0, 9); f[OFF.CRC] ^= 1; return f; })(), DEFAULT_MAX_FRAME, 'bad version and bad CRC: CRC wins'],
    ['seed-limit-exact', pub(200 - 60 - 17), 200, 'a frame exactly at the decoder limit'],
    ['seed-limit-plus-one', pub(200 - 60 - 17 + 1), 200, 'a frame one byte over the decoder limit'],
    ['seed-min-limit-header-only', ping, 60, 'limit 60: a header-only frame fits exactly'],
    ['seed-zeroes', new Uint8Array(128), DEFAULT_MAX_FRAME, 'zero bytes: bad magic'],
    ['seed-many-small', concat(Array.from({ length: 300 }, () => ping)), DEFAULT_MAX_FRAME, '300 frames in one chunk: more than one scan batch (256)'],
    ['seed-garbage-after-valid', concat([pub(), new Uint8Array([1, 2, 3, 4, 5, 6, 7])]), DEFAULT_MAX_FRAME, 'a valid frame then garbage'],
    ['seed-sid-set', (() => { const f = pub(); f[OFF.SID + 3] = 5; resealHeader(f, 0); return f; })(), DEFAULT_MAX_FRAME, 'sid set: still a valid frame for the decoder'],
    ['seed-too-large-header-split', concat([mutate(pub(10), 'tooLarge', 0, 250), ping]), FIXED_SIZE + 100, 'oversized frame followed by a frame'],
  ];
  for (const [name, bytes, max, note] of seeds) {
    const file = saveToCorpus(name, bytes, max, note);
    console.log(`seeded ${file}`);
  }
}

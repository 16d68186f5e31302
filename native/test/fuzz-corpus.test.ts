/**
 * The fuzz regression corpus (proto/test/corpus/*.hex) replayed through
 * FrameDecoder with the native scanner: whole, one byte at a time and at
 * every cut point; results must equal the recorded expectation and the
 * TypeScript scanner's.
 */
import { describe, expect, it } from 'vitest';
import { jsScanner } from '@meshbus/proto';
import { nativeOps } from '../src/index.js';
import { run } from '../../proto/test/helpers.js';
import { cut, diffFromModel, loadCorpus, model } from '../../proto/test/fuzz-lib.js';
import { NATIVE_NOTE } from './helpers.js';

const corpus = loadCorpus();

describe(`fuzz corpus replayed through the native scanner${NATIVE_NOTE}`, () => {
  for (const e of corpus) {
    it.skipIf(!nativeOps)(e.name, () => {
      const m = model(e.bytes, e.maxFrameLength);
      expect({ frames: m.frames.length, errors: m.errors }).toEqual({ frames: e.frames, errors: e.errors });
      const chunkings = [[e.bytes], cut(e.bytes, { kind: 'bytes', xs: [] })];
      const step = Math.max(1, Math.floor(e.bytes.length / 300));
      for (let p = 1; p < e.bytes.length; p += step) chunkings.push(cut(e.bytes, { kind: 'random', xs: [p] }));
      for (const chunks of chunkings) {
        const nat = run(chunks, { maxFrameLength: e.maxFrameLength, scanner: nativeOps!.scanner });
        expect(diffFromModel(e.bytes, nat, m), `chunks ${chunks.map((c) => c.length).join(',')}`).toBeUndefined();
        expect(nat).toEqual(run(chunks, { maxFrameLength: e.maxFrameLength, scanner: jsScanner }));
      }
    });
  }
});

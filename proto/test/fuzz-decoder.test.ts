/**
 * Fuzz campaign: the TypeScript FrameDecoder against an independent model of
 * SPEC.md section 9, on generated streams (valid frames of every type,
 * header mutations that reach each check of the validation order, oversized
 * frames to skip, garbage, byte flips) cut into chunks at random points, one
 * byte at a time, or in fixed steps.
 *
 * Properties: push()/end() never throw; every error is a ProtocolError with a
 * known code; the frames and errors equal the model's whatever the cuts.
 * A failing input is written to proto/test/corpus/ (replayed by
 * fuzz-corpus.test.ts in proto and native).
 *
 * CI size by default; FUZZ_RUNS=N for a campaign.
 */
import fc from 'fast-check';
import { PropertyFailure, assertProperty, runParams } from '@meshbus/testkit/property';
import { LONG_FACTOR, sized } from '@meshbus/testkit/run-size';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME, FIXED_SIZE, FrameDecoder, ProtocolError, decodeFrames, isMeshbusError } from '../src/index.js';
import { concat, run } from './helpers.js';
import { Tally, cut, cutterArb, diffFromModel, frameArb, fuzzRuns, maxFrameArb, model, saveToCorpus, streamArb } from './fuzz-lib.js';

const RUNS = fuzzRuns(1500);
const TIMEOUT = Math.max(60_000, RUNS * 20) * sized(1, LONG_FACTOR);

function campaign(name: string, arb: fc.Arbitrary<Uint8Array>, cutsPerInput: number, runs = RUNS): void {
  it(`${name} (${runs} inputs x ${cutsPerInput + 1} chunkings)`, () => {
    const tally = new Tally(`ts decoder: ${name}`);
    const t0 = Date.now();
    const prop = fc.property(arb, maxFrameArb, fc.array(cutterArb, { minLength: cutsPerInput, maxLength: cutsPerInput }), (s, max, cutters) => {
      tally.inputs++;
      tally.bytes += s.length;
      const m = model(s, max);
      for (const chunks of [[s], ...cutters.map((c) => cut(s, c))]) {
        const r = run(chunks, { maxFrameLength: max });
        tally.executions++;
        tally.note(r);
        const d = diffFromModel(s, r, m);
        if (d) throw new Error(`${d} (chunks: ${chunks.map((c) => c.length).join(',')})`);
      }
    });
    const out = fc.check(prop, runParams({ numRuns: runs }));
    tally.print(Date.now() - t0);
    if (out.failed) {
      const [s, max] = out.counterexample!;
      const file = saveToCorpus('found-ts', s, max, `fuzz-decoder ${name}: ${String(out.errorInstance)}`.replace(/\n/g, ' '));
      throw new PropertyFailure(out.seed, out.counterexamplePath, `counterexample saved as proto/test/corpus/${file}: ${fc.defaultReportMessage(out) ?? String(out.errorInstance)}`);
    }
  }, TIMEOUT);
}

describe('fuzz: TS frame decoder vs the SPEC model, any chunking', () => {
  campaign('generated streams', streamArb, 3);
  // Mostly valid frames: long runs of good frames split everywhere.
  campaign('valid-heavy streams', fc.array(frameArb, { minLength: 1, maxLength: 30 }).map(concat), 2, Math.ceil(RUNS / 3));
  // Raw bytes, and raw bytes behind a valid-looking prefix.
  campaign(
    'random bytes',
    fc.oneof(
      fc.uint8Array({ maxLength: 300, size: 'large' }),
      // Behind a length prefix and the magic, so the later header checks see random bytes.
      fc.tuple(fc.nat(200), fc.uint8Array({ minLength: 58, maxLength: 400, size: 'large' })).map(([len, rest]) => concat([new Uint8Array([0, 0, 0, 60 + len, 0x4d, 0x42]), rest])),
    ),
    1,
    Math.ceil(RUNS / 3),
  );

  it('decodeFrames throws only ProtocolErrors, and agrees with the streaming decoder', () => {
    assertProperty(
      fc.property(streamArb, (s) => {
        try {
          const frames = decodeFrames(s);
          expect(model(s, DEFAULT_MAX_FRAME).errors).toEqual([]);
          expect(frames.reduce((n, f) => n + f.size, 0)).toBe(s.length);
        } catch (e) {
          expect(e).toBeInstanceOf(ProtocolError);
          expect(isMeshbusError(e)).toBe(true);
          expect((e as ProtocolError).code).toBe(model(s, DEFAULT_MAX_FRAME).errors[0]);
        }
      }),
      { numRuns: Math.ceil(RUNS / 3) },
    );
  }, TIMEOUT);

  it('buffers at most one frame (never an oversized one), whatever the cuts', () => {
    assertProperty(
      fc.property(streamArb, maxFrameArb, cutterArb, (s, max, c) => {
        const d = new FrameDecoder({ maxFrameLength: max });
        for (const chunk of cut(s, c)) {
          d.push(chunk, () => {}, () => {});
          expect(d.buffered).toBeLessThanOrEqual(Math.max(FIXED_SIZE, max + 4));
        }
      }),
      { numRuns: Math.ceil(RUNS / 10) },
    );
  }, TIMEOUT);
});

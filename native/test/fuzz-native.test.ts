/**
 * Fuzz campaign, native vs TypeScript: the same generated streams (see
 * proto/test/fuzz-lib.ts) cut the same ways go through
 *  - FrameDecoder with the native scanner (nativeOps.scanner),
 *  - FrameDecoder with the node's hybrid scanner (ops.scanner: JS below 128 B),
 *  - FrameDecoder with the TypeScript scanner,
 * and must give identical frames and errors, equal to the SPEC model; plus
 * raw scan() calls at random offsets with small `out` capacities, whose whole
 * `out` arrays must be identical.
 *
 * Skipped (with a note) when the addon is not built. FUZZ_RUNS=N scales it.
 */
import fc from 'fast-check';
import { PropertyFailure, assertProperty, runParams } from '@meshbus/testkit/property';
import { LONG_FACTOR, sized } from '@meshbus/testkit/run-size';
import { describe, expect, it } from 'vitest';
import { SCAN_META, SCAN_SLOTS, jsScanner } from '@meshbus/proto';
import { jsOps, nativeOps, ops } from '../src/index.js';
import { run } from '../../proto/test/helpers.js';
import { Tally, cut, cutterArb, diffFromModel, fuzzRuns, maxFrameArb, model, saveToCorpus, streamArb } from '../../proto/test/fuzz-lib.js';
import { NATIVE_NOTE, needNative } from './helpers.js';

const RUNS = fuzzRuns(1500);
const TIMEOUT = Math.max(60_000, RUNS * 30) * sized(1, LONG_FACTOR);
const native = nativeOps;

describe(`fuzz: native scanner == TS scanner through FrameDecoder${NATIVE_NOTE}`, () => {
  it('addon present (skipped without it, a failure under MESHBUS_REQUIRE_NATIVE=1)', (ctx) => {
    expect(needNative(ctx).name).toBe('native');
  });

  it.skipIf(!native)(`identical frames and errors on generated streams, any chunking (${RUNS} inputs x 3 chunkings x 3 scanners)`, () => {
    const tally = new Tally('native vs ts decoder');
    const t0 = Date.now();
    const prop = fc.property(streamArb, maxFrameArb, fc.array(cutterArb, { minLength: 2, maxLength: 2 }), (s, max, cutters) => {
      tally.inputs++;
      tally.bytes += s.length;
      const m = model(s, max);
      for (const chunks of [[s], ...cutters.map((c) => cut(s, c))]) {
        const js = run(chunks, { maxFrameLength: max, scanner: jsScanner });
        const nat = run(chunks, { maxFrameLength: max, scanner: native!.scanner });
        const hyb = run(chunks, { maxFrameLength: max, scanner: ops.scanner });
        tally.executions += 3;
        tally.note(nat);
        const d = diffFromModel(s, nat, m) ?? diffFromModel(s, hyb, m);
        if (d) throw new Error(`native: ${d}`);
        expect(nat).toEqual(js);
        expect(hyb).toEqual(js);
      }
    });
    const out = fc.check(prop, runParams({ numRuns: RUNS }));
    tally.print(Date.now() - t0);
    if (out.failed) {
      const [s, max] = out.counterexample!;
      const file = saveToCorpus('found-native', s, max, `fuzz-native: ${String(out.errorInstance)}`.replace(/\n/g, ' '));
      throw new PropertyFailure(out.seed, out.counterexamplePath, `counterexample saved as proto/test/corpus/${file}: ${fc.defaultReportMessage(out) ?? String(out.errorInstance)}`);
    }
  }, TIMEOUT);

  it.skipIf(!native)(`raw scan(): identical out arrays at random offsets and capacities (${RUNS} inputs)`, () => {
    const tally = new Tally('native vs ts raw scan');
    const t0 = Date.now();
    assertProperty(
      fc.property(streamArb, maxFrameArb, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 6 }), (s, max, a, b, cap) => {
        const start = s.length ? a % (s.length + 1) : 0;
        const end = start + (s.length - start ? b % (s.length - start + 1) : 0);
        const outJ = new Uint32Array(SCAN_META + cap * SCAN_SLOTS).fill(0xdeadbeef);
        const outN = outJ.slice();
        const cj = jsOps.scanner.scan(s, start, end, max, outJ);
        const cn = native!.scanner.scan(s, start, end, max, outN);
        tally.inputs++;
        tally.executions += 2;
        expect(cn).toBe(cj);
        expect(outN).toEqual(outJ);
      }),
      { numRuns: RUNS },
    );
    tally.print(Date.now() - t0);
  }, TIMEOUT);
});

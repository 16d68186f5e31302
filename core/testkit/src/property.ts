/**
 * Property tests through one door: every failure prints its seed and path
 * (with the command that replays it), and the seeds of failures found once
 * are kept next to the property and replayed as fixed cases on every run.
 *
 *   assertProperty(prop, { numRuns: 500 }, [
 *     { seed: 1204392426, path: '3:1', note: 'empty map decoded as array (fixed in abc123)' },
 *   ]);
 *
 * Environment: MESHBUS_FC_SEED (and MESHBUS_FC_PATH) replays one run of
 * every property with that seed instead of a random one; MESHBUS_LONG=1
 * multiplies `numRuns` by LONG_FACTOR (npm run test:reliability).
 */
import fc from 'fast-check';
import { LONG, LONG_FACTOR } from './run-size.js';

/** A failure found once; replayed before the random run, on every run. */
export interface KnownFailure {
  seed: number;
  /** fast-check's counterexample path: replays exactly the failing case (and its shrink). */
  path?: string;
  /** What it found, and where it was fixed. */
  note: string;
}

/** A property failed: the message carries fast-check's report (seed, path, counterexample) and how to keep it. */
export class PropertyFailure extends Error {
  override readonly name = 'PropertyFailure';
  constructor(
    readonly seed: number,
    readonly path: string | null,
    report: string,
  ) {
    super(
      `${report}\n\nReplay: MESHBUS_FC_SEED=${seed}${path ? ` MESHBUS_FC_PATH=${path}` : ''} npx vitest run <this file>\n` +
        `Keep it: add { seed: ${seed}${path ? `, path: '${path}'` : ''}, note: '...' } to this property's known failures.`,
    );
  }
}

/** The seed (and path) MESHBUS_FC_SEED / MESHBUS_FC_PATH ask for, if any. */
export function envSeed(): { seed: number; path?: string } | undefined {
  const raw = process.env['MESHBUS_FC_SEED'];
  if (!raw) return undefined;
  const seed = Number(raw);
  if (!Number.isInteger(seed)) throw new RangeError(`MESHBUS_FC_SEED must be an integer, got ${JSON.stringify(raw)}`);
  const path = process.env['MESHBUS_FC_PATH'];
  return path ? { seed, path } : { seed };
}

/** The run parameters for one random (or MESHBUS_FC_SEED) run: `numRuns` scaled in the long run. */
export function runParams<Ts>(params: fc.Parameters<Ts> = {}): fc.Parameters<Ts> {
  const numRuns = params.numRuns ?? 100;
  return { ...params, numRuns: LONG ? numRuns * LONG_FACTOR : numRuns, ...envSeed() };
}

/** Throws PropertyFailure for a failed run; for campaigns that call fc.check themselves. */
export function throwIfFailed<Ts>(out: fc.RunDetails<Ts>): void {
  if (!out.failed) return;
  throw new PropertyFailure(out.seed, out.counterexamplePath, fc.defaultReportMessage(out) ?? String(out.errorInstance));
}

/** fc.assert, with the known failures replayed first and a replayable report on failure. */
export function assertProperty<Ts>(prop: fc.IProperty<Ts>, params: fc.Parameters<Ts> = {}, known: readonly KnownFailure[] = []): void {
  for (const k of known) throwIfFailed(fc.check(prop, { ...params, seed: k.seed, ...(k.path ? { path: k.path } : {}) }));
  throwIfFailed(fc.check(prop, runParams(params)));
}

/** assertProperty for async properties. */
export async function assertAsyncProperty<Ts>(prop: fc.IAsyncProperty<Ts>, params: fc.Parameters<Ts> = {}, known: readonly KnownFailure[] = []): Promise<void> {
  for (const k of known) throwIfFailed(await fc.check(prop, { ...params, seed: k.seed, ...(k.path ? { path: k.path } : {}) }));
  throwIfFailed(await fc.check(prop, runParams(params)));
}

/**
 * A small deterministic PRNG (mulberry32): numbers in [0, 1), the same sequence for the same seed. For tests that
 * feed one random stream to two systems and compare them (differential tests), where fast-check's shrinking is not
 * wanted.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

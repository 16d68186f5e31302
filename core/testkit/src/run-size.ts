/**
 * How big a test run is. `npm test` (CI) runs the CI size; `npm run
 * test:reliability` sets MESHBUS_LONG=1, which every fuzz, property, chaos
 * and soak test reads through this module to run its long variant.
 */

/** True under MESHBUS_LONG=1 (the reliability run). */
export const LONG = process.env['MESHBUS_LONG'] === '1';

/** `ci` in a normal run, `long` under MESHBUS_LONG=1. */
export function sized<T>(ci: T, long: T): T {
  return LONG ? long : ci;
}

/** How many times the long run multiplies a property test's CI-sized run count. */
export const LONG_FACTOR = 20;

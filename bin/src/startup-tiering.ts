import { setFlagsFromString } from 'node:v8';

/**
 * No optimizing compiler while `meshbus start` loads and starts its node.
 *
 * Why: loading the node's ~140 modules runs Node's module resolution
 * (URL-to-path, path normalization) a few thousand times, enough for V8 to
 * compile those functions with TurboFan on a second thread, ~15 ms each, for
 * code that never runs again once the node listens. Running TurboFan once
 * maps its own machine code into the process: 3.5 MB of node's binary and
 * ~1 MB of compiler memory that an idle node then keeps (issue #15: idle RSS
 * 59.3 → 55.4 MB, bin/README "Start-up"). The node's hot paths are compiled
 * as before from its first events: the flag is back before the first client
 * is accepted, and V8 optimizes what runs hot from then on.
 *
 * bin/meshbus.js imports this module alone, before main.js and its graph:
 * for `start` (workers run the same command line) it turns TurboFan off
 * now; `endStartupTiering()` (startServer, once it listens or has failed; a
 * `--workers` primary as it starts supervising) turns it back on, and so does
 * a timer after START_LIMIT_MS whatever happens. An operator's own compiler
 * flags win: any of OPERATOR_FLAGS on node's command line or in NODE_OPTIONS
 * and nothing is changed.
 */

/** V8 flags by which an operator chose the compilers (leading `--`, `no` / `no-`, `-` or `_` alike). */
const OPERATOR_FLAGS = /^--(no-?)?(opt|turbofan|jitless|maglev|sparkplug|always[-_](opt|turbofan|sparkplug))(=|$)/;

/** Start-up never holds the compiler longer than this (ms): a start that hangs on something still runs optimized code after it. */
export const START_LIMIT_MS = 10_000;

/** node's own flags: its command line and NODE_OPTIONS. */
export function nodeFlags(): string[] {
  return [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/).filter(Boolean)];
}

/** True when `flags` (node's command-line flags) choose the compilers. */
export function operatorCompilerFlags(flags: readonly string[]): boolean {
  return flags.some((f) => OPERATOR_FLAGS.test(f));
}

let held: NodeJS.Timeout | undefined;

/** True while TurboFan is off for start-up. */
export function startupTieringHeld(): boolean {
  return held !== undefined;
}

/** Turns TurboFan back on if start-up turned it off (idempotent). */
export function endStartupTiering(): void {
  if (held === undefined) return;
  clearTimeout(held);
  held = undefined;
  setFlagsFromString('--opt');
}

if (process.argv[2] === 'start' && !operatorCompilerFlags(nodeFlags())) {
  setFlagsFromString('--no-opt');
  held = setTimeout(endStartupTiering, START_LIMIT_MS).unref();
}

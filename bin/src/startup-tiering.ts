import { setFlagsFromString } from 'node:v8';
import { flagName, nodeFlags } from './node-flags.js';

/**
 * No optimizing compiler while `meshbus start` loads and starts its node.
 *
 * Why: loading the node's ~140 modules runs Node's module resolution
 * (URL-to-path, path normalization) a few thousand times, enough for V8 to
 * compile those functions with TurboFan on a second thread, ~15 ms each, for
 * code that never runs again once the node listens. Running TurboFan once
 * maps its own machine code into the process: 3.5 MB of node's binary and
 * ~1 MB of compiler memory that an idle node then keeps (issue #15; bin/README
 * "Start-up" has the figures). The node's hot paths are compiled as before:
 * TurboFan is back once the node has started (client port, WebSocket
 * gateway, peer port, HTTP port: tens of ms after the client port listens;
 * a client that comes meanwhile runs interpreted code until then), and V8
 * optimizes what runs hot from then on. Not earlier: one function made hot
 * by the gateway's or the HTTP API's module loading maps all of TurboFan.
 *
 * bin/meshbus.js calls holdStartupTiering() first, before main.js and its
 * graph load: for `start` (workers run the same command line) TurboFan is off
 * from then; endStartupTiering() (startServer once everything listens or
 * start-up failed; a `--workers` primary as it starts supervising) turns
 * it back on, and so does a timer after START_LIMIT_MS whatever happens.
 * Importing this module changes nothing. An operator's compiler flag on
 * node's command line (OPERATOR_FLAGS; of them NODE_OPTIONS accepts
 * `--jitless` only) wins: nothing is changed.
 *
 * Node's built-in modules are compiled from its code cache only while V8's
 * flags are the ones the cache was made with: the built-ins `start` always
 * loads (START_BUILTINS) are loaded first, before the flag changes, so they
 * keep their cache (70 built-ins compiled from source during start-up
 * otherwise, 2 with this list).
 */

/** Built-ins every `meshbus start` loads (its own imports, ws, msgpackr's loader, net's listen). */
const START_BUILTINS = ['child_process', 'cluster', 'crypto', 'dns', 'fs/promises', 'http', 'https', 'module', 'net', 'os', 'perf_hooks', 'stream', 'tls', 'util'];

/** V8 flags by which an operator chose the compilers (names with `-` for `_`, a leading `no` / `no-` allowed). */
const OPERATOR_FLAGS = /^--(no-?)?(opt|turbofan|jitless|lite-mode|max-opt|maglev|sparkplug|always-(opt|turbofan|sparkplug))(=|$)/;

/** Start-up never holds the compiler longer than this (ms): a start that hangs on something still runs optimized code after it. */
export const START_LIMIT_MS = 10_000;

/** True when `flags` (node's command-line flags) choose the compilers. */
export function operatorCompilerFlags(flags: readonly string[]): boolean {
  return flags.some((f) => OPERATOR_FLAGS.test(flagName(f)));
}

let held: NodeJS.Timeout | undefined;

/** True while TurboFan is off for start-up. */
export function startupTieringHeld(): boolean {
  return held !== undefined;
}

/**
 * Turns TurboFan off for `meshbus <argv>` when that is `start` and no
 * operator compiler flag is set (after loading START_BUILTINS); true when it
 * did. Called once, by bin/meshbus.js.
 */
export async function holdStartupTiering(argv: readonly string[], flags: readonly string[] = nodeFlags()): Promise<boolean> {
  if (held !== undefined || argv[0] !== 'start' || operatorCompilerFlags(flags)) return false;
  await Promise.all(START_BUILTINS.map((m) => import(`node:${m}`)));
  setFlagsFromString('--no-turbofan');
  held = setTimeout(endStartupTiering, START_LIMIT_MS).unref();
  return true;
}

/** Turns TurboFan back on if start-up turned it off (idempotent). */
export function endStartupTiering(): void {
  if (held === undefined) return;
  clearTimeout(held);
  held = undefined;
  setFlagsFromString('--turbofan');
}

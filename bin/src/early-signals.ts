/**
 * SIGTERM/SIGINT that reach `meshbus start` (or `dev`) before its handlers are installed.
 * Loading the node's modules takes a few hundred ms (more on a busy host), and
 * a signal then killed the process by its default action (exit 143/130) where
 * a signal during start-up must drain and exit 0 (bin/README.md, Signals).
 * bin/meshbus.js imports this module alone, before main.js and its graph
 * (@meshbus/core...) are loaded: for `start` (workers too: they run the same
 * command line) and `dev` a signal is recorded here until the command installs its own
 * handlers and takes it with takeEarlySignal(). What is left is Node's own
 * boot, before any module runs.
 */
const STARTING = process.argv[2] === 'start' || process.argv[2] === 'dev';

let early: NodeJS.Signals | undefined;
const record = (signal: NodeJS.Signals): void => void (early ??= signal);
if (STARTING) {
  process.on('SIGTERM', record);
  process.on('SIGINT', record);
}

/**
 * Stops recording and returns the signal that came meanwhile, if any. Call it
 * after installing the command's own handlers: in between, a signal would
 * find none and take its default action.
 */
export function takeEarlySignal(): NodeJS.Signals | undefined {
  process.off('SIGTERM', record);
  process.off('SIGINT', record);
  return early;
}

/**
 * SIGTERM/SIGINT that reach `meshbus start` (or `dev`) before its handlers are installed.
 * Loading the node's modules takes a few hundred ms (more on a busy host), and
 * a signal then killed the process by its default action (exit 143/130) where
 * a signal during start-up must drain and exit 0 (bin/README.md, Signals).
 * bin/meshbus.js imports this module alone, before main.js and its graph
 * (@meshbus/core...) are loaded: for `start` (workers too: they run the same
 * command line) and `dev` a signal is recorded here until the command installs its own
 * handlers and takes it with takeEarlySignal(). What is left is Node's own
 * boot, before any module runs. A SIGHUP is held too, to be logged and
 * ignored by `start` (ignoreHangups) or to stop `dev`.
 */
const COMMAND = process.argv[2];
const STARTING = COMMAND === 'start' || COMMAND === 'dev';

let early: NodeJS.Signals | undefined;
const record = (signal: NodeJS.Signals): void => void (early ??= signal);
/** SIGHUPs to `meshbus start` before ignoreHangups(): kept to be logged, never a stop. */
let hangups = 0;
const recordHangup = (): void => void hangups++;
if (STARTING) {
  process.on('SIGTERM', record);
  process.on('SIGINT', record);
  // dev stops on a hangup (its terminal closed), its nodes ignore one: see ignoreHangups.
  if (COMMAND === 'dev') process.on('SIGHUP', record);
  else process.on('SIGHUP', recordHangup);
}

/**
 * Stops recording and returns the signal that came meanwhile, if any. Call it
 * after installing the command's own handlers: in between, a signal would
 * find none and take its default action.
 */
export function takeEarlySignal(): NodeJS.Signals | undefined {
  process.off('SIGTERM', record);
  process.off('SIGINT', record);
  process.off('SIGHUP', record);
  return early;
}

export const HANGUP_IGNORED = 'SIGHUP ignored: meshbus has no configuration reload; stop with SIGTERM';

/**
 * SIGHUP to a `meshbus start` process (a node, each --workers worker, their
 * primary) is logged and ignored, for good. Its default action ended the
 * process at once, without a drain or a line (exit 129): a configuration
 * tool's "reload" (SIGHUP by convention) or a closed terminal took the node's
 * traffic down, and meshbus reads its settings only at start, so there is
 * nothing a hangup could reload. Takes over from the recorder without a gap
 * and logs one that came while the modules loaded.
 */
export function ignoreHangups(log: { warn(fields: object, msg: string): void }): void {
  const warn = (): void => log.warn({ signal: 'SIGHUP' }, HANGUP_IGNORED);
  process.on('SIGHUP', warn);
  process.off('SIGHUP', recordHangup);
  if (hangups > 0) warn();
}

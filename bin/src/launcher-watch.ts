/** How often the parent process id is checked, ms. */
const CHECK_EVERY = 500;

/**
 * The launcher's pid, read when this module loads (main.ts imports it first
 * thing). Read later, after the ports opened, it raced the signal: a launcher
 * killed as soon as the node listened was already gone, the node already
 * re-parented, and the watch then waited for a parent change that had happened.
 */
const LAUNCHER = process.ppid;

/**
 * Calls `onGone` once when the process that launched this one exits, but only
 * under npm (`npx meshbus start`, `npm exec`, `npm start`): npm forwards
 * SIGTERM to the `sh -c` it runs the command in, and `sh` dies of it without
 * passing it on, so the node would be left running, orphaned, holding its
 * ports. Seeing its parent change is how the node learns of that signal,
 * even when it came before this call (the launcher is the parent this process
 * had when it loaded).
 * Outside npm a re-parented node (started with nohup, or by a shell that
 * exited) keeps running. Returns the function that stops watching.
 */
export function onNpmLauncherExit(onGone: () => void, env: NodeJS.ProcessEnv = process.env): () => void {
  if (env.npm_command === undefined) return () => undefined;
  const timer = setInterval(() => {
    if (process.ppid === LAUNCHER) return;
    clearInterval(timer);
    onGone();
  }, CHECK_EVERY);
  timer.unref();
  return () => clearInterval(timer);
}

import { writeSync } from 'node:fs';

/**
 * Log lines to fd 2, synchronously: no line is lost when the process exits
 * right after, as pino's `destination({ sync: true })`.
 *
 * stderr can be a pipe whose reader is slow, and non-blocking (Node makes
 * it so once anything uses `process.stderr`, for every process sharing the
 * pipe: `--workers`, `dev`). A full pipe (EAGAIN) is waited for 1 ms at a
 * time, up to STDERR_WAIT_MS for a line; past that stderr is taken as stuck
 * and lines are dropped at once (one try each, counted) until one goes
 * through, which is preceded by a line saying how many were dropped: a
 * stuck reader costs the node one wait, not one a line. A write to a pipe
 * of at most 4,096 bytes (PIPE_BUF) is whole or nothing; a longer one, or
 * one to a socket (Node's child processes get socket pairs), can be taken
 * in part: a line given up part-way is torn, and the next line written
 * starts on a line of its own (a newline first), so no line is glued to it. A
 * blocking stderr blocks in the kernel as any synchronous logger does. A
 * closed stderr (EPIPE, EBADF) drops lines; nothing throws.
 */

/** Longest wait for a full stderr, per line, ms. */
export const STDERR_WAIT_MS = 1000;

const sleeper = new Int32Array(new SharedArrayBuffer(4));
let stuck = false;
/** Lines dropped since stderr last took one: said before the next line that goes through. */
let dropped = 0;
/** A line was given up part-way: the next write starts with a newline. */
let torn = false;

/** Writes `line` (a whole line, newline included) to fd 2; see the module's rules. */
export function writeStderr(line: string): void {
  if (dropped > 0) {
    // The line that says so goes first; while stderr stays stuck this one is dropped too.
    if (!writeLine(`{"level":"warn","time":${Date.now()},"pid":${process.pid},"dropped":${dropped},"msg":"log lines dropped: stderr stayed full"}\n`)) {
      dropped++;
      return;
    }
    dropped = 0;
  }
  if (!writeLine(line)) dropped++;
}

/** True when the whole line was written. */
function writeLine(line: string): boolean {
  const bytes = Buffer.from(torn ? `\n${line}` : line);
  let off = 0;
  let waited = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(2, bytes, off);
      stuck = false;
      torn = false;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return false;
      // Stuck: one try a line. Else up to the bound, then stuck (and a line begun is torn).
      if (stuck || waited++ >= STDERR_WAIT_MS) {
        stuck = true;
        if (off > 0) torn = true;
        return false;
      }
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
  return true;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** This package's entry script, run the way README tells users to: `node bin/meshbus.js ...`. */
export const BIN = fileURLToPath(new URL('../meshbus.js', import.meta.url));

/** A `meshbus` process: its output so far and its exit. */
export interface CliProcess {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** Exit code, or the signal name when killed by one. */
  exited: Promise<number | string>;
  /** Kills whatever is left of a `viaShell` process's group (its orphaned node); no-op otherwise. */
  killGroup: () => void;
}

/** Starts `node bin/meshbus.js <args>` with piped output (`env` adds to this process's environment). */
export function spawnCli(args: string[], opts: { env?: NodeJS.ProcessEnv; viaShell?: boolean } = {}): CliProcess {
  const env = { ...process.env, ...opts.env };
  // viaShell: the way npm runs a bin (`sh -c "<bin> <args>"`), to stand in for npx.
  // In a process group of its own, which a node orphaned by the shell keeps:
  // killGroup() then reaches it even when a test failed before it drained.
  const child = opts.viaShell
    ? spawn('sh', ['-c', [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ')], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    : spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? 'unknown')));
  const killGroup = (): void => {
    try {
      if (opts.viaShell && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is gone already.
    }
  };
  return { child, out: () => out, err: () => err, exited, killGroup };
}

/**
 * Runs a command to its end, bounded: a process still running after `limitMs`
 * is killed and reported as 'hung' (what a client command must never do).
 */
export async function runCli(args: string[], limitMs = 15_000, env?: NodeJS.ProcessEnv): Promise<{ code: number | string; out: string; err: string }> {
  const p = spawnCli(args, env ? { env } : {});
  const t = setTimeout(() => p.child.kill('SIGKILL'), limitMs);
  const code = await p.exited;
  clearTimeout(t);
  return { code: code === 'SIGKILL' ? 'hung' : code, out: p.out(), err: p.err() };
}

/** Polls `cond` every `everyMs` until it holds; throws naming `what` after `limitMs`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, limitMs = 20_000, everyMs = 50): Promise<void> {
  const end = Date.now() + limitMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** True when nothing listens on 127.0.0.1:port (we can bind it ourselves). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `n` consecutive free loopback ports, the first returned (random start in 20000..59999). */
export async function freePortRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error(`no ${n} consecutive free ports found`);
}

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '@meshbus/core';
import { until } from './wait.js';

/** The `meshbus` command's entry script (bin/meshbus.js of @meshbus/cli), run as users run it: `node <BIN> ...`. */
export const MESHBUS_BIN = fileURLToPath(import.meta.resolve('@meshbus/cli/meshbus.js'));

/** A `meshbus` process: its output so far and its exit. */
export interface CliProcess {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** Exit code, or the signal name when killed by one. */
  exited: Promise<number | string>;
  /** Kills whatever is left of a `viaShell` or `group` process's group (its orphaned node, workers); no-op otherwise. */
  killGroup: () => void;
}

/**
 * Starts `node [nodeArgs] bin/meshbus.js <args>` with piped output. `group`: in a process
 * group of its own (its pid is the group's id), for a test that signals the
 * whole group as a terminal or systemd's default KillMode does.
 */
export function spawnCli(args: string[], opts: { env?: NodeJS.ProcessEnv; viaShell?: boolean; group?: boolean; nodeArgs?: string[] } = {}): CliProcess {
  const env = { ...process.env, ...opts.env };
  const node = [...(opts.nodeArgs ?? []), MESHBUS_BIN];
  // viaShell: the way npm runs a bin (`sh -c "<bin> <args>"`), to stand in for npx.
  // In a process group of its own, which a node orphaned by the shell keeps:
  // killGroup() then reaches it even when a test failed before it drained.
  const child = opts.viaShell
    ? spawn('sh', ['-c', [process.execPath, ...node, ...args].map((a) => `'${a}'`).join(' ')], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    : spawn(process.execPath, [...node, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.group === true });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? 'unknown')));
  const killGroup = (): void => {
    try {
      if ((opts.viaShell || opts.group) && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // ESRCH: the group is gone already.
    }
  };
  return { child, out: () => out, err: () => err, exited, killGroup };
}

/**
 * `until`, and on a failure the end of `p`'s stderr in the error (what the
 * node was doing). When `p` runs at the call, it fails as soon as `p` exits: a
 * node that failed to start is not waited for until the timeout. (Called after
 * `p` exited, it waits for what `p` left behind: an orphaned node.)
 */
export async function untilProcess(p: CliProcess, cond: () => boolean | Promise<boolean>, what: string, ms?: number, every?: number): Promise<void> {
  let ended: number | string | undefined;
  if (p.child.exitCode === null && p.child.signalCode === null) void p.exited.then((c) => (ended = c));
  try {
    await until(async () => {
      if (ended !== undefined) throw new Error(`the process exited (${ended}) while waiting for ${what}`);
      return cond();
    }, what, ms, every);
  } catch (e) {
    throw new Error(`${(e as Error).message}; its stderr ends:\n${p.err().slice(-3000)}`);
  }
}

/**
 * `spawnCli` on ports of the test's choosing, waited for until `ready(p, ports)`.
 * A port chosen free (bound and released: `freePort`, `freePortRange`) is no
 * reservation, and something else on the machine may take it before the CLI
 * binds it (a `meshbus dev` found its chosen HTTP port taken in CI). When the
 * process exits before it is ready saying a port is "already in use", the
 * ports are chosen again (`pick`) and the CLI started again: 3 tries in all.
 * Any other exit before ready fails as `untilProcess` does. Returns the
 * process (given to `track` each time) and the ports it runs on.
 */
export async function spawnCliOnFreePorts<P>(o: {
  pick: () => Promise<P>;
  args: (ports: P) => string[];
  ready: (p: CliProcess, ports: P) => boolean | Promise<boolean>;
  what: string;
  track: (p: CliProcess) => CliProcess;
  spawn?: Parameters<typeof spawnCli>[1];
}): Promise<{ p: CliProcess; ports: P }> {
  for (let attempt = 1; ; attempt++) {
    const ports = await o.pick();
    const p = o.track(spawnCli(o.args(ports), o.spawn));
    try {
      await untilProcess(p, () => o.ready(p, ports), o.what);
      return { p, ports };
    } catch (e) {
      if (attempt >= 3 || p.child.exitCode === null) throw e;
      // 'exit' can come before the last of stderr: read it to its end first.
      const err = p.child.stderr!;
      if (!err.closed) await new Promise((r) => err.once('close', r));
      if (!p.err().includes('already in use')) throw e;
    }
  }
}

/** The `field` of each JSON log line of `p`'s stderr whose msg is `msg`, as strings (a node says a setting once per process). */
export function loggedField(p: CliProcess, msg: string, field: string): string[] {
  return p
    .err()
    .split('\n')
    .filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`))
    .map((l) => String((JSON.parse(l) as Record<string, unknown>)[field]));
}

/**
 * Runs a command to its end, bounded: a process still running after `limitMs`
 * is killed and reported as 'hung' (what a client command must never do).
 */
export async function runCli(args: string[], limitMs = 15_000, env?: NodeJS.ProcessEnv): Promise<{ code: number | string; out: string; err: string }> {
  const p = spawnCli(args, { env });
  const t = setTimeout(() => p.child.kill('SIGKILL'), limitMs);
  const code = await p.exited;
  clearTimeout(t);
  return { code: code === 'SIGKILL' ? 'hung' : code, out: p.out(), err: p.err() };
}

export interface NodeProcess {
  child: ChildProcess;
  port: number;
  clusterPort: number;
  url: string;
  log: string[];
  exited: Promise<number | null>;
}

/** Runs `meshbus start` (cluster, HTTP and ws ports on) as a real process and waits until it logs `readyText`. */
export async function spawnNode(args: {
  port?: number;
  /** null: no --cluster-port flag (e.g. --workers picks its own loopback ports). */
  clusterPort?: number | null;
  seeds?: string[];
  extra?: string[];
  /** Default 'cluster listening'. */
  readyText?: string;
  /** Options for node itself, before the script (e.g. --import of a test probe). */
  nodeArgs?: string[];
}): Promise<NodeProcess> {
  const port = args.port ?? (await freePort());
  const clusterPort = args.clusterPort === null ? 0 : (args.clusterPort ?? (await freePort()));
  const argv = [
    MESHBUS_BIN, 'start',
    '--port', String(port),
    ...(args.clusterPort === null ? [] : ['--cluster-port', String(clusterPort)]),
    '--http-port', '0',
    '--ws-port', '0',
    '--log-level', 'info',
    ...(args.seeds?.length ? ['--seeds', args.seeds.join(',')] : []),
    ...(args.extra ?? []),
  ];
  const child = spawn(process.execPath, [...(args.nodeArgs ?? []), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await new Promise<void>((resolve, reject) => {
    // Generous: CI runs other process-heavy suites (chaos, soak) on the same 2 cores.
    const t = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`node did not start: ${log.join('')}`));
    }, 25_000);
    const onData = (d: Buffer): void => {
      log.push(d.toString());
      if (log.join('').includes(args.readyText ?? 'cluster listening')) {
        clearTimeout(t);
        resolve();
      }
    };
    child.stderr!.on('data', onData);
    child.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
    child.once('exit', () => reject(new Error(`node exited: ${log.join('')}`)));
  });
  return { child, port, clusterPort, url: `127.0.0.1:${port}`, log, exited };
}

/**
 * A test file's teardown of the CLI processes it spawned: kills (SIGKILL)
 * each of `procs` still running, waits for it to exit and empties the list.
 * `group`: also kills what each left in its process group (a node orphaned
 * by its npm-like launcher, `spawnCli` `viaShell`).
 */
export async function stopProcesses(procs: CliProcess[], o: { group?: boolean } = {}): Promise<void> {
  for (const p of procs.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
    if (o.group) p.killGroup();
  }
}

/** A list of spawned CLI processes for a test file: `track` adds one and returns it, `stop` is stopProcesses of the list. */
export function trackedProcesses(): { track(p: CliProcess): CliProcess; stop(o?: { group?: boolean }): Promise<void> } {
  const procs: CliProcess[] = [];
  return {
    track(p) {
      procs.push(p);
      return p;
    },
    stop: (o) => stopProcesses(procs, o),
  };
}

/**
 * Starts `meshbus start` the way a user does (`node bin/meshbus.js start`,
 * default flags but free ports, no Redis) and times it from spawn to the
 * first HELLO answered with WELCOME on the client port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { FrameDecoder, FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { cpuOf, freePort, sleep, stopProcess } from '../proc.js';

/** A checkout measured: its root (holding bin/meshbus.js, installed and built). */
export interface Checkout {
  label: string;
  root: string;
}

export interface RunningNode {
  child: ChildProcess;
  pid: number;
  port: number;
  httpPort: number;
  /** Milliseconds from just before spawn() to the first WELCOME. */
  startupMs: number;
  /**
   * CPU milliseconds (user + system, all threads; /proc, 10 ms ticks) the
   * node had used when its first WELCOME arrived: steadier than startupMs on
   * a loaded machine, where the wall time mostly measures waiting for a core.
   */
  startupCpuMs: number;
  stop: () => Promise<void>;
}

const HELLO = encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], name: 'footprint' }) });
const START_TIMEOUT_MS = 20_000;
const POLL_MS = 5;

const live = new Set<ChildProcess>();
/** Kills every node still running; called on exit and on SIGINT/SIGTERM. */
export function killAllNodes(): void {
  for (const c of live) c.kill('SIGKILL');
}

/**
 * One TCP connect + HELLO on 127.0.0.1:port: 'welcome', 'refused' (nothing
 * listens yet, or the connection died before WELCOME), or an Error for an
 * ERROR frame (a node that listens but refuses us will never do better).
 */
function helloOnce(port: number, timeoutMs: number): Promise<'welcome' | 'refused'> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port });
    const dec = new FrameDecoder();
    const done = (r: 'welcome' | 'refused' | Error): void => {
      clearTimeout(t);
      s.destroy();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const t = setTimeout(() => done('refused'), timeoutMs);
    s.once('connect', () => s.write(HELLO));
    s.on('data', (d) =>
      dec.push(
        d,
        (f) => {
          if (f.type === FrameType.WELCOME) done('welcome');
          else if (f.type === FrameType.ERROR) done(new Error(`node answered HELLO with ERROR`));
        },
        (e) => done(e),
      ),
    );
    s.once('error', () => done('refused'));
    s.once('close', () => done('refused'));
  });
}

export interface StartOptions {
  /** Raise the child's open-file soft limit to its hard limit (bash `ulimit -n`), for many connections. */
  raiseFdLimit?: boolean;
  env?: NodeJS.ProcessEnv;
}

/**
 * Spawns `node <root>/bin/meshbus.js start --port P --http-port H --ws-port W`
 * (HTTP API and WebSocket gateway on, as by default; log level default,
 * stdout discarded) and polls connect + HELLO every 5 ms until WELCOME.
 * Throws when the node exits or 20 s pass first (the node is killed).
 */
export async function startNode(co: Checkout, o: StartOptions = {}): Promise<RunningNode> {
  // A port found free may be taken by another process before the node binds it: try again with new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(co, o);
    } catch (e) {
      if (attempt >= 3 || !/EADDRINUSE/.test((e as Error).message)) throw e;
    }
  }
}

async function startOnce(co: Checkout, o: StartOptions): Promise<RunningNode> {
  const [port, httpPort, wsPort] = [await freePort(), await freePort(), await freePort()];
  const args = [join(co.root, 'bin', 'meshbus.js'), 'start', '--port', String(port), '--http-port', String(httpPort), '--ws-port', String(wsPort)];
  // exec keeps the pid: /proc/<pid> is the node's own, not bash's.
  const [cmd, argv] = o.raiseFdLimit
    ? ['bash', ['-c', 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...args]]
    : [process.execPath, args];
  const t0 = performance.now();
  const child = spawn(cmd, argv as string[], { cwd: co.root, stdio: ['ignore', 'ignore', 'pipe'], env: o.env ?? process.env });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-2048);
  });
  const stop = (): Promise<void> => stopProcess(child, 3000);
  const deadline = t0 + START_TIMEOUT_MS;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited (${child.exitCode ?? child.signalCode}) before WELCOME: ${err.trim()}`);
      if (performance.now() > deadline) throw new Error(`no WELCOME within ${START_TIMEOUT_MS} ms: ${err.trim()}`);
      if ((await helloOnce(port, 2000)) === 'welcome') break;
      await sleep(POLL_MS);
    }
  } catch (e) {
    await stop();
    throw new Error(`${co.label}: meshbus start ${(e as Error).message}`);
  }
  const startupMs = performance.now() - t0;
  const startupCpuMs = (cpuOf(child.pid) ?? NaN) * 1000;
  return { child, pid: child.pid!, port, httpPort, startupMs, startupCpuMs, stop };
}

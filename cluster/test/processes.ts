import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '@meshbus/core';

/** The `meshbus` command of @meshbus/cli (a dev dependency), run as a user runs it. */
export const BIN = fileURLToPath(import.meta.resolve('@meshbus/cli/meshbus.js'));
export { freePort };

export interface NodeProcess {
  child: ChildProcess;
  port: number;
  clusterPort: number;
  url: string;
  log: string[];
  exited: Promise<number | null>;
}

/** Runs `meshbus start` as a real process and waits until it listens. */
export async function spawnNode(args: {
  port?: number;
  /** null: no --cluster-port flag (e.g. --workers picks its own loopback ports). */
  clusterPort?: number | null;
  seeds?: string[];
  extra?: string[];
  readyText?: string;
  /** Options for node itself, before the script (e.g. --import of a test probe). */
  nodeArgs?: string[];
}): Promise<NodeProcess> {
  const port = args.port ?? (await freePort());
  const clusterPort = args.clusterPort === null ? 0 : (args.clusterPort ?? (await freePort()));
  const argv = [
    BIN, 'start',
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

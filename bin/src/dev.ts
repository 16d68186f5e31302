import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { UsageError, intOption, noExtraArgs, stringOption, type ParsedArgs } from './command-spec.js';
import { DEV } from './command-specs.js';
import { onNpmLauncherExit } from './launcher-watch.js';
import { takeEarlySignal } from './early-signals.js';
import type { LogLevel, Logger } from '@meshbus/core';

/** This package's entry script: each dev node is a `meshbus start` process. */
const BIN = fileURLToPath(new URL('../meshbus.js', import.meta.url));

/** A port range base..base+n-1 from a flag; UsageError naming the flag when it does not fit in 1..65535. */
function basePort(p: ParsedArgs, name: string, n: number, fallback: number): number {
  const v = intOption(p, name, 1, 65535) ?? fallback;
  if (v + n - 1 > 65535) throw new UsageError(`--${name} ${v}: ${n} nodes need ports up to ${v + n - 1}, past 65535`);
  return v;
}

function oneOf(p: ParsedArgs, name: string, allowed: string[]): string {
  const v = stringOption(p, name)!;
  if (!allowed.includes(v)) throw new UsageError(`--${name} must be ${allowed.join(', ')}; got "${v}"`);
  return v;
}

export async function runDev(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 0, DEV);
  const n = intOption(p, 'nodes', 1, 32)!;
  const base = basePort(p, 'base-port', n, 4480);
  const clusterBase = basePort(p, 'cluster-base', n, base + 1000);
  if (clusterBase + n - 1 > 65535) throw new UsageError(`--base-port ${base}: the peer ports base-port+1000.. would pass 65535 (set --cluster-base)`);
  const httpBase = basePort(p, 'http-base', n, 8480);
  const wsBase = basePort(p, 'ws-base', n, 9480);
  const logLevel = oneOf(p, 'log-level', ['debug', 'info', 'warn', 'error', 'silent']);
  const mesh = oneOf(p, 'mesh', ['full', 'partial']);
  const children: ChildProcess[] = [];
  const seed = `127.0.0.1:${clusterBase}`;
  for (let i = 0; i < n; i++) {
    const args = [
      BIN, 'start',
      '--name', `dev-${i}`,
      '--port', String(base + i),
      '--cluster-port', String(clusterBase + i),
      '--http-port', String(httpBase + i),
      '--ws-port', String(wsBase + i),
      '--log-level', logLevel,
      '--mesh', mesh,
      ...(i > 0 ? ['--seeds', seed] : []),
    ];
    children.push(spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }));
  }
  process.stdout.write(
    `meshbus dev: ${n} nodes\n` +
      children.map((c, i) => `  dev-${i}: pid ${c.pid ?? '?'}  clients 127.0.0.1:${base + i}  peers 127.0.0.1:${clusterBase + i}  ws://127.0.0.1:${wsBase + i}  http://127.0.0.1:${httpBase + i}/`).join('\n') +
      `\nTry: npx meshbus sub 'demo.>' --server 127.0.0.1:${base + n - 1}   and   npx meshbus pub demo.hello hi --server 127.0.0.1:${base}\n` +
      (n > 1 ? `Kill one (kill -9 <pid>) to watch the others route around it; Ctrl-C stops them all.\n` : ''),
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  // A node that dies on its own (a port taken, a crash: an exit code other than 0) ends the whole dev
  // mesh: a partial one would mislead. One stopped from outside (a signal: kill -9 <pid>, or SIGTERM,
  // after which it drains and exits 0) is the user's experiment, a node lost: the others keep running
  // (before, killing one to watch the mesh survive it stopped them all).
  // The launcher's own records go the nodes' way: the same pino line on the same stderr.
  // Loaded once the nodes are spawned: their start does not wait for @meshbus/core here.
  const log: Promise<Logger | undefined> = import('@meshbus/core').then(
    (m) => m.jsonLogger(logLevel as LogLevel, { role: 'dev' }),
    () => undefined,
  );
  const exits = children.map(
    (c, i) =>
      new Promise<number>((r) =>
        c.once('exit', (code, signal) => {
          // Killed by the SIGTERM stop() sent: it came during the node's own boot, before any
          // handler (nothing was up yet), so it counts as a clean stop, not a failure.
          if (stopping) return r(code ?? (signal === 'SIGTERM' ? 0 : 1));
          if (signal !== null || code === 0) {
            void log.then((l) => {
              l?.warn({ name: `dev-${i}`, nodePid: c.pid, code, signal }, 'a dev node was stopped from outside: the others keep running (Ctrl-C stops them)');
              r(0);
            });
            return;
          }
          stop();
          // Resolves either way (the loader promise cannot reject): the launcher's exit waits for the line.
          void log.then((l) => {
            l?.error({ name: `dev-${i}`, nodePid: c.pid, code, signal }, 'a dev node exited: stopping the dev mesh');
            r(code ?? 1);
          });
        }),
      ),
  );
  const onSignal = (): void => {
    stop();
  };
  // Every one (stop() acts once): a second signal must not kill the launcher while its nodes drain.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Its terminal closed: the nodes ignore a hangup (early-signals.ts), so dead of it the launcher
  // would leave them running, orphaned, holding their ports.
  process.on('SIGHUP', onSignal);
  // One that came while the modules loaded (early-signals.ts): the nodes just spawned drain it.
  if (takeEarlySignal() !== undefined) onSignal();
  onNpmLauncherExit(onSignal);
  const codes = await Promise.all(exits);
  // 0 once every node was stopped (by dev's own SIGTERM/SIGINT, or each from outside) without a failure.
  return codes.every((c) => c === 0) ? 0 : 1;
}

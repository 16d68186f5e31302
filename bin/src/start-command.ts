import { ConfigError } from '@meshbus/core';
import { inOperatorTerms, loadStartConfig, unknownStartVariables } from './config.js';
import { UsageError, noExtraArgs, type ParsedArgs } from './command-spec.js';
import { nodeIdentity, startServer } from './start.js';
import { guardNodeProcess } from './node-process.js';
import { onNpmLauncherExit } from './launcher-watch.js';
import { takeEarlySignal } from './early-signals.js';
import { EXIT, START } from './main.js';
import { thrownText } from '@meshbus/proto';

/** `meshbus start`: runs one node (or --workers processes) until SIGTERM/SIGINT; resolves with the exit code. */
export async function runStart(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 0, START);
  let cfg;
  try {
    cfg = loadStartConfig(p.values);
  } catch (e) {
    // A bad flag, variable or config file is a usage error: nothing was started.
    if (e instanceof ConfigError) throw new UsageError(e.message.replace(/^invalid configuration: /, ''));
    throw e;
  }
  if (cfg.workers > 1) {
    const { runWorkers } = await import('./workers.js');
    return runWorkers(cfg, p.values);
  }
  // Listen for signals before starting: a SIGTERM that lands while the ports are
  // being opened must drain too, not kill the process with its default action.
  let early: string | undefined;
  let onSignal = (signal: string): void => void (early ??= signal);
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  // One that came while the modules loaded (early-signals.ts).
  early = takeEarlySignal();
  // The guard is installed before anything starts: a rejection during start-up is logged too.
  const identity = await nodeIdentity(cfg);
  guardNodeProcess(identity.logger);
  for (const u of unknownStartVariables()) identity.logger.warn(u, 'environment variable ignored: no setting of meshbus start reads it');
  // A bad option found by the node, cluster, HTTP API or gateway exits 2 (a UsageError), named as the operator set it.
  const server = await startServer(cfg, undefined, identity).catch((e: unknown) => {
    throw inOperatorTerms(e, p.values);
  });
  await new Promise<void>((resolve) => {
    let stopping = false;
    onSignal = (signal) => {
      if (stopping) return;
      stopping = true;
      server.node.logger.info({ signal }, 'stopping');
      server.stop().then(resolve, (e: unknown) => {
        server.node.logger.error({ err: thrownText(e) }, 'stop failed');
        resolve();
      });
    };
    if (early !== undefined) onSignal(early);
    onNpmLauncherExit(() => onSignal('launcher exited (npm forwarded a signal)'));
  });
  server.node.logger.info({}, 'stopped');
  return EXIT.ok;
}

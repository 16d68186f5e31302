import { parseArgs } from 'node:util';
import { isMeshbusError } from '@meshbus/proto';
import { ConfigError } from '@meshbus/core';
import { START_DEFAULTS, START_KEYS, flagName, loadStartConfig } from './config.js';
import { startServer } from './start.js';
import { logUnhandledRejections } from './rejection-guard.js';
import { runDev } from './dev.js';
import { runPub, runReq, runSub, runTrace } from './client-commands.js';

const USAGE = `meshbus: a pub/sub event-routing mesh

Usage:
  meshbus start [options]              run a node (defaults: clients on 127.0.0.1:4480, HTTP on 8480)
  meshbus dev [--nodes 3]              run a local mesh of N nodes on this machine
  meshbus pub <topic> <data> [--server host:port] [--count N] [--header k=v]
  meshbus sub <topic> [--server host:port] [--queue group] [--count N]
  meshbus req <topic> <data> [--server host:port] [--timeout ms]
  meshbus trace <topic> <data> [--server host:port] [--wait ms]

Options of start (also MESHBUS_<NAME> environment variables and a JSON --config file):
${START_KEYS.map((k) => `  --${flagName(k)}${START_DEFAULTS[k] !== undefined && !(Array.isArray(START_DEFAULTS[k]) && (START_DEFAULTS[k] as unknown[]).length === 0) ? ` (default ${String(START_DEFAULTS[k])})` : ''}`).join('\n')}
  --config <file.json>
`;

/** Exit codes: 0 ok, 1 runtime failure (unreachable node, port in use), 2 bad usage. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'start':
        return await start(rest);
      case 'dev':
        return await runDev(rest);
      case 'pub':
        return await runPub(rest);
      case 'sub':
        return await runSub(rest);
      case 'req':
        return await runReq(rest);
      case 'trace':
        return await runTrace(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return cmd === undefined ? 2 : 0;
      default:
        process.stderr.write(`meshbus: unknown command "${cmd}"\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    return report(e);
  }
}

function report(e: unknown): number {
  if (e instanceof ConfigError || (isMeshbusError(e) && e.code === 'MB_ERR_CONFIG')) {
    process.stderr.write(`meshbus: ${e.message.replace(/^invalid configuration: /, '')}\n`);
    return 1;
  }
  if (e instanceof TypeError && (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`meshbus: ${e.message}\nRun "meshbus help" for usage.\n`);
    return 2;
  }
  if (isMeshbusError(e)) {
    process.stderr.write(`meshbus: ${e.message} (${e.code})\n`);
    return 1;
  }
  process.stderr.write(`meshbus: ${e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}

async function start(args: string[]): Promise<number> {
  const options: Record<string, { type: 'string' }> = { config: { type: 'string' } };
  for (const k of START_KEYS) options[flagName(k)] = { type: 'string' };
  const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
  const cfg = loadStartConfig(values);
  if (cfg.workers > 1) {
    const { runWorkers } = await import('./workers.js');
    return runWorkers(cfg);
  }
  const server = await startServer(cfg);
  logUnhandledRejections(server.node.logger);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      server.node.logger.info({ signal }, 'stopping');
      server.stop().then(resolve, resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

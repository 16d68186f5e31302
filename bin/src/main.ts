import { readFileSync } from 'node:fs';
// First: it records the launcher's pid before anything else can take time.
import './launcher-watch.js';
import { isMeshbusError, thrownText } from '@meshbus/proto';
import { ConfigError } from '@meshbus/core';
import { forTerminal } from './msg-format.js';
import { START_SETTINGS, START_KEYS, flagName } from './config.js';
import { UsageError, formatHelp, parseCommand, type CommandSpec, type OptionSpec, type ParsedArgs } from './command-spec.js';
import { BENCH, CLUSTER, DEV, HISTORY, PUB, REPLY, REQ, SERVER, SUB, LEAF_KEY, TOKEN, TRACE } from './command-specs.js';

/** Exit codes of every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

export const START: CommandSpec = {
  name: 'start',
  args: '',
  summary: 'run a node',
  description:
    'Runs one meshbus node. Every option is also a MESHBUS_<NAME> environment variable (e.g. MESHBUS_CLUSTER_PORT) and a key of the JSON --config file (camelCase, e.g. clusterPort); flags win over variables, variables over the file. SIGTERM or SIGINT drains the node (clients are told to reconnect elsewhere) and exits 0; SIGHUP is logged and ignored (there is no configuration reload).',
  options: [
    ...START_KEYS.map((k): OptionSpec => {
      const s = START_SETTINGS[k];
      const d = s.default;
      const shown = d === undefined || (Array.isArray(d) && d.length === 0) || d === '' ? undefined : String(d);
      return { name: flagName(k), arg: s.arg, help: s.help, ...(shown !== undefined ? { defaultText: shown } : {}) };
    }),
    { name: 'config', arg: 'file.json', help: 'JSON file of settings (also MESHBUS_CONFIG).' },
  ],
};

type Runner = (p: ParsedArgs) => Promise<number>;

/**
 * Every command, in help order: its spec (parsing and --help) and what it runs.
 * A runner imports its module when its command runs, not before: `meshbus start`
 * then loads neither the SDK (pub, sub, req, trace) nor the dev launcher, which
 * keeps the node's start-up short (issue #15), and `--help` loads no runner.
 */
export const COMMANDS: ReadonlyArray<{ spec: CommandSpec; run: Runner }> = [
  { spec: START, run: async (p) => (await import('./start-command.js')).runStart(p) },
  { spec: DEV, run: async (p) => (await import('./dev.js')).runDev(p) },
  { spec: PUB, run: async (p) => (await import('./client-commands.js')).runPub(p) },
  { spec: SUB, run: async (p) => (await import('./client-commands.js')).runSub(p) },
  { spec: REQ, run: async (p) => (await import('./client-commands.js')).runReq(p) },
  { spec: REPLY, run: async (p) => (await import('./client-commands.js')).runReply(p) },
  { spec: HISTORY, run: async (p) => (await import('./history-command.js')).runHistory(p) },
  { spec: TRACE, run: async (p) => (await import('./trace-command.js')).traceCommand(p) },
  { spec: BENCH, run: async (p) => (await import('./bench-command.js')).runBenchCommand(p) },
  { spec: CLUSTER, run: async (p) => (await import('./cluster-command.js')).runCluster(p) },
  { spec: SERVER, run: async (p) => (await import('./cluster-command.js')).runServer(p) },
  { spec: TOKEN, run: async (p) => (await import('./token-command.js')).runToken(p) },
  { spec: LEAF_KEY, run: async (p) => (await import('./leaf-key-command.js')).runLeafKey(p) },
];

/** The package version, from this package's package.json. */
export function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function usage(): string {
  const w = Math.max(...COMMANDS.map((c) => c.spec.name.length)) + 2;
  return `meshbus: a pub/sub event-routing mesh

Usage: meshbus <command> [arguments] [options]

Commands:
${COMMANDS.map((c) => `  ${c.spec.name.padEnd(w)}${c.spec.summary}`).join('\n')}

  meshbus <command> --help   the options of one command
  meshbus --version          print the version

Client commands read MESHBUS_SERVER, MESHBUS_TOKEN and MESHBUS_TLS_CA when the flags are not given.

Exit codes: 0 ok, 1 runtime failure (node unreachable, port in use, no reply, event refused), 2 bad usage (unknown flag, bad value, invalid topic).
`;
}

/**
 * Runs one command line (without `node` and the script). Resolves with the
 * exit code: 0 ok, 1 runtime failure, 2 bad usage. Never rejects: errors are
 * printed to stderr as one line.
 */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
        process.stderr.write(usage());
        return EXIT.usage;
      case 'help':
      case '--help':
      case '-h': {
        const sub = COMMANDS.find((c) => c.spec.name === rest[0]);
        process.stdout.write(sub ? formatHelp(sub.spec) : usage());
        return EXIT.ok;
      }
      case 'version':
      case '--version':
      case '-V':
        process.stdout.write(`meshbus ${version()}\n`);
        return EXIT.ok;
    }
    const command = COMMANDS.find((c) => c.spec.name === cmd);
    if (!command) throw new UsageError(`unknown command "${cmd}" (commands: ${COMMANDS.map((c) => c.spec.name).join(', ')})`);
    const parsed = parseCommand(command.spec, rest);
    if (parsed.help) {
      process.stdout.write(formatHelp(command.spec));
      return EXIT.ok;
    }
    return await command.run(parsed);
  } catch (e) {
    return report(e, cmd);
  }
}

/**
 * The process entry (bin/meshbus.js): runs `main` and exits with its code.
 * The explicit exit is what keeps a client command from hanging on a socket
 * or timer still open after an error.
 */
export function run(argv: string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`meshbus: ${e instanceof Error ? (e.stack ?? e.message) : thrownText(e)}\n`);
      process.exit(EXIT.failure);
    },
  );
}

function report(e: unknown, cmd: string | undefined): number {
  if (e instanceof UsageError) {
    const help = cmd && COMMANDS.some((c) => c.spec.name === cmd) ? `meshbus ${cmd} --help` : 'meshbus --help';
    process.stderr.write(`meshbus: ${e.detail}\nRun "${help}" for usage.\n`);
    return EXIT.usage;
  }
  if (e instanceof ConfigError || (isMeshbusError(e) && e.code === 'MB_ERR_CONFIG')) {
    process.stderr.write(`meshbus: ${e.message.replace(/^invalid configuration: /, '')}\n`);
    return EXIT.failure;
  }
  if (isMeshbusError(e)) {
    // The message may be a node's (an ERROR frame's): made safe for the terminal.
    process.stderr.write(`meshbus: ${forTerminal(e.message)} (${e.code})\n`);
    return EXIT.failure;
  }
  process.stderr.write(`meshbus: ${e instanceof Error ? e.message : thrownText(e)}\n`);
  return EXIT.failure;
}

import { createRequire } from 'node:module';
import type { Logger as Pino, LoggerOptions } from 'pino';

/**
 * The node's log sink: structured records, one JSON object per line. What
 * `jsonLogger` makes is a pino logger, and fastify (the HTTP API) logs
 * through the same instance (`pinoOf`), so a process writes one stream in
 * one format; any object with these four methods will do (tests collect
 * lines, `silentLogger` drops them).
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** The pino loggers jsonLogger made: the ones fastify can share. */
const made = new WeakSet<object>();

// pino is CommonJS: required at the first jsonLogger call, so importing @meshbus/core
// does not load it (about 20 ms) and a process that logs through its own Logger never does.
const requirePino = (): typeof import('pino') => createRequire(import.meta.url)('pino') as typeof import('pino');

/**
 * pino options of the meshbus line: `{"level":"info","time":<ms since the
 * epoch>,"pid":…,<base>,<record>,"msg":"…"}` — string levels (not pino's
 * numbers), so a line reads the same to people and to `jq`.
 */
export function pinoOptions(level: LogLevel, base: object): LoggerOptions {
  return {
    level,
    base: { pid: process.pid, ...base },
    formatters: { level: (label: string) => ({ level: label }) },
  };
}

/**
 * A pino logger writing JSON lines, each carrying `base` (e.g. the node id)
 * and a time in ms, to stderr (synchronously: no line is lost when the
 * process exits right after) or to `write`. Records below `level` are
 * dropped; 'silent' drops all.
 */
export function jsonLogger(level: LogLevel = 'info', base: object = {}, write?: (line: string) => void): Logger {
  const pino = requirePino();
  const dest = write ? { write } : pino.destination({ fd: 2, sync: true });
  const log = pino(pinoOptions(level, base), dest);
  made.add(log);
  return log;
}

/**
 * The pino instance behind `logger` when jsonLogger made it (so fastify can
 * log through it: same stream, same format), else undefined.
 */
export function pinoOf(logger: Logger): Pino | undefined {
  return made.has(logger) ? (logger as Pino) : undefined;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

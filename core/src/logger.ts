import { createRequire } from 'node:module';
import type { Logger as Pino, LoggerOptions } from 'pino';
import { ConfigError } from './config-error.js';
import { jsonOf, recordFields } from './log-line.js';
import { writeStderr } from './stderr-lines.js';

/**
 * The node's log sink: structured records, one JSON object per line. What
 * `jsonLogger` makes writes pino's line itself; fastify (the HTTP API) logs
 * through a pino instance of the same format and sink (`pinoOf`), so a
 * process writes one stream in one format; any object with these four
 * methods will do (tests collect lines, `silentLogger` drops them).
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** pino's level numbers (a record is written when its level's is at least the logger's). */
const RANK: Record<LogLevel, number> = { debug: 20, info: 30, warn: 40, error: 50, silent: Infinity };

/**
 * pino options of the meshbus line: `{"level":"info","time":<ms since the
 * epoch>,"pid":…,<base>,<record>,"msg":"…"}` — string levels (not pino's
 * numbers), so a line reads the same to people and to `jq`.
 */
function pinoOptions(level: LogLevel, base: object): LoggerOptions {
  return {
    level,
    base: { pid: process.pid, ...base },
    formatters: { level: (label: string) => ({ level: label }) },
  };
}

/**
 * The logger jsonLogger makes. Not pino: requiring pino loads its transport
 * machinery (worker_threads, thread-stream, sonic-boom), 1.7 MB of an idle
 * node's RSS against issue #15's 60 MB, for the few lines a node writes a
 * minute. The line is pino's (fields in pino's order, its level and time,
 * its serializer for Errors, its fallback for what JSON cannot write:
 * log-line.ts); pino itself, fastify's logger, is loaded with the HTTP API
 * and writes the same line to the same sink (`pinoOf`). A log call never
 * throws.
 */
class JsonLines implements Logger {
  /** `,"pid":…,<base>` as pino precomputes its bindings. */
  private readonly bindings: string;

  constructor(
    readonly level: LogLevel,
    readonly base: object,
    readonly write: ((line: string) => void) | undefined,
  ) {
    this.bindings = `,"pid":${process.pid}${recordFields(base)}`;
  }

  debug(obj: object, msg?: string): void {
    if (RANK[this.level] <= RANK.debug) this.line('debug', obj, msg);
  }
  info(obj: object, msg?: string): void {
    if (RANK[this.level] <= RANK.info) this.line('info', obj, msg);
  }
  warn(obj: object, msg?: string): void {
    if (RANK[this.level] <= RANK.warn) this.line('warn', obj, msg);
  }
  error(obj: object, msg?: string): void {
    if (RANK[this.level] <= RANK.error) this.line('error', obj, msg);
  }

  private line(level: string, obj: object, msg: string | undefined): void {
    try {
      // As pino: an Error given as the record is its `err`, and an `err` without a message lends its own.
      if (obj instanceof Error) obj = { err: obj };
      if (msg === undefined) msg = borrowedMessage(obj);
      const m = msg === undefined ? undefined : jsonOf(msg);
      const line = `{"level":"${level}","time":${Date.now()}${this.bindings}${recordFields(obj)}${m === undefined ? '' : `,"msg":${m}`}}\n`;
      if (this.write) this.write(line);
      else writeStderr(line);
    } catch {
      // A record whose `err` getter throws, or a `write` sink that throws: the line is lost, the caller goes on.
    }
  }
}

/** The message of a record's `err` when it is an Error; undefined when not, or when reading it throws (a getter). */
function borrowedMessage(obj: object): string | undefined {
  try {
    const err = (obj as { err?: unknown }).err;
    return err instanceof Error ? String(err.message) : undefined;
  } catch {
    return undefined;
  }
}

/** `level`, or ConfigError when it is not a LogLevel. */
function checkedLevel(level: LogLevel): LogLevel {
  if (!Object.hasOwn(RANK, level)) throw new ConfigError(`log level must be one of ${Object.keys(RANK).join(', ')}, got ${JSON.stringify(level)}`);
  return level;
}

/**
 * A logger writing JSON lines, each carrying `base` (e.g. the node id) and a
 * time in ms, to stderr (synchronously: no line is lost when the process
 * exits right after; a stuck stderr: stderr-lines.ts) or to `write`. Records
 * below `level` are dropped; 'silent' drops all. Line: `{"level":"info",
 * "time":<ms>,"pid":…,<base>,<record>,"msg":"…"}`, as pino writes it; an
 * Error shows as pino's `{type,message,stack,…}`. Throws ConfigError for a
 * level not in LogLevel.
 */
export function jsonLogger(level: LogLevel = 'info', base: object = {}, write?: (line: string) => void): Logger {
  return new JsonLines(checkedLevel(level), base, write);
}

/**
 * `logger` at another level (its own when `level` is undefined), same base
 * and sink, when jsonLogger made it; undefined otherwise. What the HTTP API
 * logs through when asked for its records at a level of their own.
 * ConfigError for a level not in LogLevel.
 */
export function loggerAt(logger: Logger, level?: LogLevel): Logger | undefined {
  if (level !== undefined) checkedLevel(level);
  if (!(logger instanceof JsonLines)) return undefined;
  return level === undefined || logger.level === level ? logger : new JsonLines(level, logger.base, logger.write);
}

const pinos = new WeakMap<JsonLines, Pino>();

/**
 * A pino instance writing what `logger` writes (same level, base, sink and
 * line) when jsonLogger made it, else undefined: what the HTTP API hands
 * fastify. Loads pino at the first call (fastify loads it anyway); one
 * instance per logger.
 */
export function pinoOf(logger: Logger): Pino | undefined {
  if (!(logger instanceof JsonLines)) return undefined;
  let p = pinos.get(logger);
  if (!p) {
    const pino = createRequire(import.meta.url)('pino') as typeof import('pino');
    // stderr through the node's own writer: fastify's lines follow its rules for a stuck stderr too.
    p = pino(pinoOptions(logger.level, logger.base), { write: logger.write ?? writeStderr });
    pinos.set(logger, p);
  }
  return p;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

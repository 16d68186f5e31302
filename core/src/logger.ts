import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger as Pino, LoggerOptions } from 'pino';

/**
 * The node's log sink: structured records, one JSON object per line. What
 * `jsonLogger` makes writes the pino line format itself; fastify (the HTTP
 * API) logs through a pino instance of the same format and sink (`pinoOf`),
 * so a process writes one stream in one format; any object with these four
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
 * node's RSS against issue #15's 60 MB, for lines a node writes a few of a
 * minute. The line is pino's, byte for byte in the fields' order (pino
 * itself, fastify's logger, is loaded with the HTTP API and writes the same
 * line to the same sink: `pinoOf`).
 */
class JsonLines implements Logger {
  /** `,"pid":…,<base>` as pino precomputes its bindings. */
  private readonly bindings: string;

  constructor(
    readonly level: LogLevel,
    readonly base: object,
    readonly write: ((line: string) => void) | undefined,
  ) {
    this.bindings = `,"pid":${process.pid}${fields(base)}`;
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
    const line = `{"level":"${level}","time":${Date.now()}${this.bindings}${fields(obj)}${msg === undefined ? '' : `,"msg":${stringify(msg)}`}}\n`;
    if (this.write) this.write(line);
    else writeStderr(line);
  }
}

/** `,"k":v,…` of an object's own fields ('' for none), as pino writes a record's. */
function fields(obj: object): string {
  const json = stringify(obj);
  return json.length > 2 && json.startsWith('{') ? `,${json.slice(1, -1)}` : '';
}

/** An Error as pino's standard serializer shows it: type, message, stack (and its own fields such as code). */
function errorFields(e: Error): object {
  return { ...e, type: e.name, message: e.message, stack: e.stack };
}

const replacer = (_key: string, value: unknown): unknown => (value instanceof Error ? errorFields(value) : value);

// safe-stable-stringify (pino's own fallback, a dependency of ours): what JSON.stringify throws on (a BigInt, a cycle) still makes a line.
let safe: ((value: unknown, replace: typeof replacer) => string | undefined) | undefined;
function stringify(value: unknown): string {
  try {
    return JSON.stringify(value, replacer) ?? '""';
  } catch {
    safe ??= (createRequire(import.meta.url)('safe-stable-stringify') as typeof import('safe-stable-stringify')).configure({ bigint: true, circularValue: '[Circular]', deterministic: false });
    return safe(value, replacer) ?? '""';
  }
}

/** Longest time a line waits for a full stderr pipe (EAGAIN) before it is dropped: a logger never stalls the node for long. */
const STDERR_WAIT_MS = 1000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes a line to fd 2 synchronously (no line lost when the process exits
 * right after), as pino's `destination({ sync: true })` does: a partial write
 * continues, a full non-blocking pipe (EAGAIN) is waited for 1 ms at a time.
 * A closed stderr (EPIPE, EBADF) drops the line: logging never throws.
 */
function writeStderr(line: string): void {
  const bytes = Buffer.from(line);
  let off = 0;
  let waited = 0;
  while (off < bytes.length) {
    try {
      off += writeSync(2, bytes, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || waited++ >= STDERR_WAIT_MS) return;
      Atomics.wait(sleeper, 0, 0, 1);
    }
  }
}

/**
 * A logger writing JSON lines, each carrying `base` (e.g. the node id) and a
 * time in ms, to stderr (synchronously: no line is lost when the process
 * exits right after) or to `write`. Records below `level` are dropped;
 * 'silent' drops all. Line: `{"level":"info","time":<ms>,"pid":…,<base>,
 * <record>,"msg":"…"}`; an Error in a record shows as `{type,message,stack}`;
 * a BigInt or a cycle does not throw.
 */
export function jsonLogger(level: LogLevel = 'info', base: object = {}, write?: (line: string) => void): Logger {
  return new JsonLines(level, base, write);
}

/**
 * `logger` at another level (its own when `level` is undefined), same base
 * and sink, when jsonLogger made it; undefined otherwise. What the HTTP API
 * logs through when asked for its records at a level of their own.
 */
export function loggerAt(logger: Logger, level?: LogLevel): Logger | undefined {
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
    p = pino(pinoOptions(logger.level, logger.base), logger.write ? { write: logger.write } : pino.destination({ fd: 2, sync: true }));
    pinos.set(logger, p);
  }
  return p;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

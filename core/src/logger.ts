/**
 * The node's log sink: structured records, one JSON object per line. The
 * HTTP layer can hand in pino (fastify's logger) instead; both satisfy this.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** JSON lines on stderr, each carrying `base` (the node id) and a time. */
export function jsonLogger(level: LogLevel = 'info', base: object = {}, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const min = RANK[level];
  const emit = (lvl: Exclude<LogLevel, 'silent'>, obj: object, msg?: string): void => {
    if (RANK[lvl] < min) return;
    write(JSON.stringify({ level: lvl, time: Date.now(), ...base, ...obj, ...(msg ? { msg } : {}) }) + '\n');
  };
  return {
    debug: (o, m) => emit('debug', o, m),
    info: (o, m) => emit('info', o, m),
    warn: (o, m) => emit('warn', o, m),
    error: (o, m) => emit('error', o, m),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

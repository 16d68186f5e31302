import { jsonLogger, type LogLevel, type Logger } from '@meshbus/core';

/**
 * A node's `jsonLogger` (pino) whose lines are kept for the test instead of
 * written: `records()` parses them, in order.
 */
export function logCapture(level: LogLevel = 'info', base: object = {}): { logger: Logger; lines: string[]; records: () => Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = jsonLogger(level, base, (l) => void lines.push(l));
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

import { format } from 'node:util';
import type { Logger } from '@meshbus/core';

/**
 * Makes what libraries and Node itself write to stderr the node's JSON log
 * lines: `console.warn`/`console.error` calls (ioredis: "[WARN] Redis server
 * does not require a password, but a password was supplied.") at warn/error
 * with `source: 'console'`, and Node's process warnings ("(node:12)
 * [DEP0040] DeprecationWarning: …", a MaxListenersExceededWarning) at warn
 * with `source: 'node'` and their `name`/`code`. Before, they were plain text
 * among the JSON lines: a log pipeline that reads each line as JSON dropped
 * or flagged them. Process-wide: only for a process that is a node (`meshbus
 * start`, each worker, their primary). `process.noDeprecation`
 * (`--no-deprecation`) is honoured as Node does. Returns the function that
 * puts things back.
 */
export function logLibraryOutput(logger: Logger): () => void {
  const { warn, error } = console;
  console.warn = (...args: unknown[]): void => logger.warn({ source: 'console' }, format(...args));
  console.error = (...args: unknown[]): void => logger.error({ source: 'console' }, format(...args));
  // Node's own printer (lib/internal/process/warning.js, `onWarning`) writes "(node:pid) …" lines.
  const printers = process.listeners('warning').filter((l) => l.name === 'onWarning');
  // None with NODE_NO_WARNINGS=1 or --no-warnings: the operator silenced them, so they are not logged either.
  if (printers.length === 0) return () => Object.assign(console, { warn, error });
  for (const p of printers) process.off('warning', p);
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.name === 'DeprecationWarning' && process.noDeprecation) return;
    logger.warn({ source: 'node', name: w.name, ...(w.code === undefined ? {} : { code: w.code }) }, w.message);
  };
  process.on('warning', onWarning);
  return () => {
    Object.assign(console, { warn, error });
    process.off('warning', onWarning);
    for (const p of printers) process.on('warning', p);
  };
}

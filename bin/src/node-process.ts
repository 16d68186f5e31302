import type { Logger } from '@meshbus/core';
import { ignoreHangups } from './early-signals.js';
import { logLibraryOutput } from './library-output.js';
import { logUnhandledRejections } from './rejection-guard.js';

/**
 * What a process that is a node installs before anything starts (`meshbus
 * start`, each `--workers` worker and their primary): a rejection nobody
 * handled is logged, not fatal (rejection-guard.ts); SIGHUP is logged and
 * ignored (early-signals.ts); libraries' console lines and Node's warnings
 * become JSON log lines (library-output.ts).
 */
export function guardNodeProcess(logger: Logger): void {
  logUnhandledRejections(logger);
  ignoreHangups(logger);
  logLibraryOutput(logger);
}

/** node's own flags, as the process-wide settings of `meshbus start` (startup-tiering, gc-schedule) read them to leave an operator's choice alone. */

/** node's own flags: its command line and NODE_OPTIONS. */
export function nodeFlags(): string[] {
  return [...process.execArgv, ...(process.env['NODE_OPTIONS'] ?? '').split(/\s+/).filter(Boolean)];
}

/** A flag with its name spelled with `-` (V8 takes `_` and `-` alike: `--no_opt` is `--no-opt`); a value after `=` kept as is. */
export function flagName(flag: string): string {
  const eq = flag.indexOf('=');
  return eq < 0 ? flag.replace(/_/g, '-') : flag.slice(0, eq).replace(/_/g, '-') + flag.slice(eq);
}

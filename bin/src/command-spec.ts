import { parseArgs } from 'node:util';
import { ClientError, topicProblem } from '@meshbus/proto';

/**
 * Bad command-line usage: an unknown flag, a missing or malformed value, a
 * topic the protocol refuses. The command exits 2 with its one-line message
 * (which names the flag or argument) before it connects or listens; for
 * `start`, also a bad value the node, cluster, HTTP API or gateway finds
 * while starting (config.ts inOperatorTerms), before it serves.
 */
export class UsageError extends ClientError {
  /** The message without the code's prefix: what the command prints. */
  readonly detail: string;
  constructor(detail: string) {
    super('MB_ERR_INVALID_ARGUMENT', detail);
    this.detail = detail;
  }
}

/** One flag of a command: drives both parsing and `--help`. */
export interface OptionSpec {
  /** Long name without dashes, e.g. `cluster-port`. */
  name: string;
  short?: string;
  /** Placeholder of the value in help (e.g. `host:port`); none for a boolean flag. */
  arg?: string;
  /** May be given several times (values collected in order). */
  multiple?: boolean;
  /** Default value, applied by the parser and shown in help. */
  default?: string;
  /** Default shown in help only: the command applies it itself (e.g. it depends on other settings). */
  defaultText?: string;
  /** One sentence: what the option does. */
  help: string;
}

/** A command: its positional arguments, its options, and what `--help` prints. */
export interface CommandSpec {
  name: string;
  /** Positional arguments as written in the usage line, e.g. `<topic> <data>`. */
  args: string;
  /** One line for the command list of `meshbus --help`. */
  summary: string;
  /** Longer description printed by `meshbus <command> --help`. */
  description: string;
  options: OptionSpec[];
}

const HELP: OptionSpec = { name: 'help', short: 'h', help: 'Print this help and exit 0.' };

export interface ParsedArgs {
  values: Record<string, string | string[] | boolean | undefined>;
  positionals: string[];
  help: boolean;
}

/**
 * Parses `args` against the command's options. Throws UsageError naming the
 * flag on an unknown flag, a flag missing its value, or a value given to a
 * boolean flag. Defaults are applied; values stay strings (commands convert
 * them with intOption and friends, which also name the flag).
 */
export function parseCommand(spec: CommandSpec, args: string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean; default?: string }> = {};
  for (const o of [...spec.options, HELP]) {
    options[o.name] = {
      type: o.arg === undefined ? 'boolean' : 'string',
      ...(o.short ? { short: o.short } : {}),
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.default !== undefined && o.arg !== undefined ? { default: o.default } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: negativeValues(spec, args), options, strict: true, allowPositionals: true });
  } catch (e) {
    // node:util's messages are long and mention "strict: false": keep the part that names the flag.
    throw new UsageError(`${spec.name}: ${(e as Error).message.split('. ')[0]!.replace(/^Unknown option '(.*)'$/, 'unknown option $1')}`);
  }
  const values = parsed.values as ParsedArgs['values'];
  return { values, positionals: parsed.positionals, help: values.help === true };
}

/**
 * `--flag -1` as `--flag=-1`: node:util refuses a value starting with a dash
 * ("argument is ambiguous"), so a negative number never reached the check
 * that says what range the flag takes. Only for flags that take a value, and
 * only a value that is a number: `--flag --other` stays a missing value.
 */
function negativeValues(spec: CommandSpec, args: string[]): string[] {
  const valued = new Set(spec.options.filter((o) => o.arg !== undefined).map((o) => `--${o.name}`));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return [...out, ...args.slice(i)];
    const next = args[i + 1];
    if (valued.has(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** The text of `meshbus <command> --help`: usage, description, one line per option. */
export function formatHelp(spec: CommandSpec): string {
  const rows = [...spec.options, HELP].map((o) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.arg ? ` <${o.arg}>` : ''}`;
    const extra = [o.multiple ? 'repeatable' : '', (o.default ?? o.defaultText) !== undefined ? `default ${o.default ?? o.defaultText}` : ''].filter(Boolean).join('; ');
    return [flag, extra ? `${o.help} (${extra})` : o.help] as const;
  });
  const width = Math.min(40, Math.max(...rows.map(([f]) => f.length)) + 2);
  const lines = rows.map(([f, h]) => (f.length + 2 > width ? `  ${f}\n  ${' '.repeat(width)}${h}` : `  ${f.padEnd(width)}${h}`));
  return `Usage: meshbus ${spec.name}${spec.args ? ' ' + spec.args : ''} [options]\n\n${spec.description}\n\nOptions:\n${lines.join('\n')}\n`;
}

/** The positional argument at `i`, or UsageError `missing <name>`. */
export function positional(p: ParsedArgs, i: number, name: string, spec: CommandSpec): string {
  const v = p.positionals[i];
  if (v === undefined) throw new UsageError(`${spec.name}: missing ${name} (usage: meshbus ${spec.name} ${spec.args})`);
  return v;
}

/** Refuses positional arguments past the `max` the command takes. */
export function noExtraArgs(p: ParsedArgs, max: number, spec: CommandSpec): void {
  if (p.positionals.length > max) throw new UsageError(`${spec.name}: unexpected argument "${p.positionals[max]}" (usage: meshbus ${spec.name} ${spec.args})`);
}

/** A string option's value (the last one when repeated). */
export function stringOption(p: ParsedArgs, name: string): string | undefined {
  const v = p.values[name];
  return Array.isArray(v) ? v[v.length - 1] : typeof v === 'string' ? v : undefined;
}

/** A whole-number option within [min, max]; UsageError naming the flag otherwise. Undefined when absent with no default. */
export function intOption(p: ParsedArgs, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = stringOption(p, name);
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}, got "${raw}"`);
  }
  return n;
}

/** Milliseconds per duration unit. */
const MS_PER: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration option in `unit` (ms or s): a whole number in that unit, or one
 * with ms, s, m, h or d (`500ms`, `5s`, `15m`, `1h`, `7d`); from `min` to `max`
 * in `unit`. UsageError naming the flag otherwise, and for a figure that is
 * not whole in `unit` (`1500ms` for seconds). Every time flag of the commands
 * reads this (before, the milliseconds flags took bare numbers only while
 * `token --ttl` took `1h`).
 */
export function durationOption(p: ParsedArgs, name: string, unit: 'ms' | 's', min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = stringOption(p, name);
  if (raw === undefined) return undefined;
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(raw.trim());
  const n = m ? (Number(m[1]) * MS_PER[m[2] ?? unit]!) / MS_PER[unit]! : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be a whole number of ${unit === 'ms' ? 'milliseconds' : 'seconds'} ${range}, or one with ms, s, m, h or d (e.g. 500ms, 5s, 15m), got "${raw}"`);
  }
  return n;
}

/** A topic (pattern = false) or subscription pattern, checked with the protocol's rules. */
export function checkTopic(topic: string, pattern: boolean, what = '<topic>'): string {
  const problem = topicProblem(topic, pattern);
  if (problem) throw new UsageError(`${what} "${topic}": ${problem}`);
  return topic;
}

import { createRequire } from 'node:module';

/**
 * The JSON of a log record, as pino writes it: `,"k":v,…` of the record's
 * own fields, each value JSON (an Error through pino's standard serializer).
 * Nothing here throws: a value nothing can write is written as pino writes
 * it, `"[unable to serialize, circular reference is too complex to analyze]"`.
 */

const require = createRequire(import.meta.url);

/** pino's text for a value it cannot write. */
const UNSERIALIZABLE = '"[unable to serialize, circular reference is too complex to analyze]"';

// pino-std-serializers' err (pino's own, a dependency of pino): type (the constructor's name), message and
// stack with their causes, own fields, AggregateError's errors, errors that reach themselves cut. Loaded at the
// first Error a record holds.
let serializeErr: ((e: Error) => object) | undefined;
const replacer = (_key: string, value: unknown): unknown =>
  value instanceof Error ? (serializeErr ??= (require('pino-std-serializers') as typeof import('pino-std-serializers')).err)(value) : value;

// safe-stable-stringify (pino's fallback, a dependency of ours), configured as pino does (depth 5, breadth 100): what
// JSON.stringify throws on (a BigInt, a cycle, a record 20,000 levels deep) still makes a line of bounded size.
let safe: ((value: unknown, replace: typeof replacer) => string | undefined) | undefined;

/** JSON of `value`, or undefined when nothing can write it (a getter or toJSON that throws, a hostile proxy). */
export function jsonOf(value: unknown): string | undefined {
  try {
    return JSON.stringify(value, replacer);
  } catch {
    try {
      safe ??= (require('safe-stable-stringify') as typeof import('safe-stable-stringify')).configure({
        bigint: true,
        circularValue: '[Circular]',
        maximumDepth: 5,
        maximumBreadth: 100,
      });
      return safe(value, replacer);
    } catch {
      return UNSERIALIZABLE;
    }
  }
}

/** `,"k":v,…` of a record's own enumerable fields ('' for none); fields with undefined, function or symbol values left out. */
export function recordFields(obj: object): string {
  const json = Array.isArray(obj) ? undefined : jsonOf(obj);
  if (json !== undefined && json.startsWith('{')) return json.length > 2 ? `,${json.slice(1, -1)}` : '';
  // An array, or a record whose toJSON made something else: its own fields, one by one, as pino does.
  let out = '';
  let keys: string[];
  try {
    keys = Object.keys(obj);
  } catch {
    return '';
  }
  for (const k of keys) {
    let v: string | undefined;
    try {
      v = jsonOf((obj as Record<string, unknown>)[k]);
    } catch {
      v = UNSERIALIZABLE;
    }
    if (v !== undefined) out += `,${JSON.stringify(k)}:${v}`;
  }
  return out;
}

import { ClientError, isMeshbusError, thrownText, type MeshbusError } from '@meshbus/proto';

/**
 * The SDK's most frequent errors, one function each rather than the code
 * spelled out at 40 call sites (smaller browser bundle, same errors).
 */
export const invalid = (detail: string, options?: { cause?: unknown }): ClientError => new ClientError('MB_ERR_INVALID_ARGUMENT', detail, options);
export const connectionClosed = (detail: string, options?: { cause?: unknown }): ClientError => new ClientError('MB_ERR_CONNECTION_CLOSED', detail, options);

/**
 * What a thrown value says: its `message`, else the value itself as a
 * string; never throws (a `message` getter that throws, a Proxy, an object
 * without `toString`): it describes errors inside catch blocks, where a
 * throw escaped untyped.
 */
export function messageOf(e: unknown): string {
  try {
    return thrownText((e as Error)?.message ?? e);
  } catch {
    return thrownText(e);
  }
}

/** `e` as a MeshbusError: itself when it is one, else a ClientError MB_ERR_INVALID_ARGUMENT carrying it as `cause`. */
export function asError(e: unknown): MeshbusError {
  return isMeshbusError(e) ? e : invalid(messageOf(e), { cause: e });
}

/** Runs `fn`; returns what it threw (as a MeshbusError), or undefined. */
export function safely(fn: () => void): MeshbusError | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    return asError(e);
  }
}

/** Throws MB_ERR_INVALID_ARGUMENT naming `name` unless `v` is undefined or a number `ok` accepts (the ranges: option-checks.ts, README "Options"). */
export function check(name: string, v: unknown, ok: (v: number) => boolean): void {
  if (v !== undefined && !(typeof v === 'number' && ok(v))) throw invalid(`${name} out of range (README "Options"): ${String(v)}`);
}

/** A count: an integer >= `min`, or Infinity (no bound). */
export const count =
  (min: number) =>
  (v: number): boolean =>
    v === Infinity || (Number.isInteger(v) && v >= min);

const isFunction = (v: unknown): boolean => typeof v === 'function';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const KINDS = {
  function: isFunction,
  object: isObject,
  boolean: (v: unknown) => typeof v === 'boolean',
  string: (v: unknown) => typeof v === 'string',
  codec: (v: unknown) => isObject(v) && isFunction(v.encode) && isFunction(v.decode),
};

/** The kinds of non-numeric argument checkKind knows (option-checks.ts says why). */
export type Kind = keyof typeof KINDS;

/** Throws MB_ERR_INVALID_ARGUMENT naming `name` unless `v` is undefined or of `kind` (a codec: an object with encode and decode). */
export function checkKind(name: string, v: unknown, kind: Kind): void {
  if (v !== undefined && !KINDS[kind](v)) throw invalid(`${name}: ${kind} expected, got ${v === null ? 'null' : typeof v}`);
}

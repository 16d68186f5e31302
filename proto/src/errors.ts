/**
 * The one table of meshbus error codes. The same numbers travel in ERROR and
 * NACK frames, surface as `code` on SDK errors and map to HTTP statuses, so a
 * caller can branch on a code whatever side of the wire raised it. A retired
 * code is never reused.
 */

export type ErrorKind = 'protocol' | 'session' | 'client' | 'store';

interface CodeDef {
  readonly num: number;
  readonly kind: ErrorKind;
  /** True when the connection cannot continue after this error. */
  readonly fatal: boolean;
  readonly message: string;
}

/**
 * The table as rows of [code without `MB_ERR_`, num, fatal (1/0), message],
 * expanded into ERROR_CODES at load (the same object and literal types for
 * every consumer). The kind is not written: it follows from the number's
 * thousand (kindOf), so a row cannot contradict its range. Rows rather than
 * objects because every client ships this table: 1.7 KB less minified,
 * 42 B less gzipped in the browser bundle.
 */
const ROWS = [
  // 1xxx: the byte stream or a frame is malformed.
  ['BAD_MAGIC', 1001, 1, 'frame does not start with the meshbus magic'],
  ['UNSUPPORTED_VERSION', 1002, 1, 'unsupported protocol version'],
  ['UNKNOWN_TYPE', 1003, 1, 'unknown frame type'],
  ['RESERVED_BITS', 1004, 1, 'reserved bits or bytes are not zero'],
  ['LENGTH_MISMATCH', 1005, 1, 'frame lengths disagree'],
  ['FRAME_TOO_LARGE', 1006, 0, 'frame exceeds the size limit'],
  ['BAD_CRC', 1007, 1, 'header CRC32C mismatch'],
  ['TRUNCATED', 1008, 1, 'stream ended inside a frame'],
  ['BAD_TOPIC', 1009, 0, 'invalid topic'],
  ['BAD_BODY', 1010, 0, 'control frame body cannot be decoded'],
  ['BAD_EXTENSION', 1011, 0, 'extension block cannot be decoded'],
  ['BAD_HASH', 1012, 0, 'topic hash does not match the topic'],
  // 2xxx: the session refused or ended something.
  ['HANDSHAKE_TIMEOUT', 2001, 1, 'no HELLO within the handshake timeout'],
  ['HANDSHAKE_REQUIRED', 2002, 1, 'frame sent before the handshake'],
  ['AUTH_FAILED', 2003, 1, 'authentication failed'],
  ['PERMISSION_DENIED', 2004, 0, 'permission denied'],
  ['TOKEN_EXPIRED', 2005, 1, 'token expired'],
  ['SLOW_CONSUMER', 2006, 1, 'slow consumer'],
  ['NO_RESPONDERS', 2007, 0, 'no responders for the request'],
  ['TOO_MANY_SUBSCRIPTIONS', 2008, 0, 'subscription limit reached'],
  ['TOO_MANY_CONNECTIONS', 2009, 1, 'connection limit reached'],
  ['RATE_LIMITED', 2010, 0, 'publish rate limit exceeded'],
  ['STALE_CONNECTION', 2011, 1, 'no PONG within the liveness interval'],
  ['DRAINING', 2012, 1, 'node is shutting down, reconnect elsewhere'],
  ['UNEXPECTED_FRAME', 2013, 0, 'frame type not allowed here'],
  ['PAYLOAD_TOO_LARGE', 2014, 0, 'payload exceeds the negotiated limit'],
  ['UNKNOWN_SUBSCRIPTION', 2015, 0, 'no such subscription'],
  ['EVENTS_DROPPED', 2016, 0, 'events dropped for a slow subscription'],
  ['SUBJECT_CHANGED', 2020, 0, 'a refreshed token must have the same subject'],
  ['OUT_OF_RANGE', 2021, 0, 'a number or size is past its documented bound'],
  ['TOO_MANY_REPLAYS', 2040, 0, 'too many history replays in progress'],
  ['AUTH_THROTTLED', 2050, 1, 'too many failed authentications from this address'],
  ['BAD_PEER_INFO', 2060, 0, 'invalid node id, name or address from a peer'],
  ['TOPOLOGY', 2061, 1, 'link refused: it would make a topology meshbus does not route (a loop)'],
  ['INPUT_BUDGET', 2070, 1, 'input held past the node input budget'],
  // 3xxx: raised by a client library, never sent by a node.
  ['TIMEOUT', 3001, 0, 'request timed out'],
  ['CONNECTION_CLOSED', 3002, 0, 'connection closed'],
  ['OUTBOX_FULL', 3003, 0, 'offline outbox is full'],
  ['INVALID_ARGUMENT', 3004, 0, 'invalid argument'],
  ['CONNECT_FAILED', 3005, 0, 'could not connect to any server'],
  ['CODEC', 3006, 0, 'payload codec failed'],
  ['SEND_BUFFER_FULL', 3007, 0, 'send buffer full'],
  // 4xxx: durable storage.
  ['STORE_UNAVAILABLE', 4001, 0, 'durable store unavailable'],
  ['STORE_CORRUPT', 4010, 0, 'stored data corrupt or of the wrong type'],
  ['NOT_DURABLE', 4020, 0, 'topic is not durable on this node'],
  ['STORE_FULL', 4030, 0, 'durable store quota reached'],
  // 9xxx: anything else a node could not do.
  ['INTERNAL', 9001, 0, 'internal error'],
  ['CONFIG', 9002, 1, 'invalid configuration'],
  ['NOT_FOUND', 9003, 0, 'no such resource'],
  ['NOT_READY', 9004, 0, 'node is not ready'],
  ['UNSUPPORTED_MEDIA_TYPE', 9010, 0, 'content type not accepted'],
] as const satisfies readonly (readonly [string, number, 0 | 1, string])[];

type Row = (typeof ROWS)[number];

/** 1xxx protocol, 3xxx client, 4xxx store; 2xxx and 9xxx session. */
type KindOf<N extends number> = `${N}` extends `1${string}` ? 'protocol' : `${N}` extends `3${string}` ? 'client' : `${N}` extends `4${string}` ? 'store' : 'session';
const KINDS: readonly ErrorKind[] = ['session', 'protocol', 'session', 'client', 'store'];
function kindOf(num: number): ErrorKind {
  return KINDS[Math.floor(num / 1000)] ?? 'session';
}

/** Every code with its number, kind, fatality and message (the literal types of each row). */
export const ERROR_CODES = {} as {
  readonly [R in Row as `MB_ERR_${R[0]}`]: { readonly num: R[1]; readonly kind: KindOf<R[1]>; readonly fatal: R[2] extends 1 ? true : false; readonly message: R[3] };
};

export type ErrorCode = keyof typeof ERROR_CODES;

const BY_NUM = new Map<number, ErrorCode>();
for (const [name, num, fatal, message] of ROWS) {
  const code = `MB_ERR_${name}` as const;
  (ERROR_CODES as Record<ErrorCode, CodeDef>)[code] = { num, kind: kindOf(num), fatal: fatal === 1, message };
  BY_NUM.set(num, code);
}

/** The code for a numeric wire code; unknown numbers map to MB_ERR_INTERNAL. */
export function codeFromNumber(num: number): ErrorCode {
  return BY_NUM.get(num) ?? 'MB_ERR_INTERNAL';
}

const BRAND = Symbol.for('meshbus.error');

/**
 * Base of every meshbus error. `code` is the stable string code, `num` the
 * number sent on the wire. Branded with Symbol.for so `isMeshbusError` holds
 * across duplicate installs of this package.
 */
export class MeshbusError extends Error {
  readonly code: ErrorCode;
  readonly num: number;
  readonly fatal: boolean;
  /** `detail` already starting with the code's text ("<message>: …", e.g. a wrapped error's message) is not prefixed again. */
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const def = ERROR_CODES[code];
    const prefix = def.message + ': ';
    super(detail ? (detail.startsWith(prefix) ? detail : prefix + detail) : def.message, options);
    this.code = code;
    this.num = def.num;
    this.fatal = def.fatal;
    (this as unknown as Record<symbol, boolean>)[BRAND] = true;
  }
  /**
   * The class's name: `'ClientError'`, `'SessionError'`... A minifier renames
   * classes (the browser bundles' were `'p'`, `'b'`), so proto's own classes
   * carry theirs as data; a subclass elsewhere (e.g. a node's `ConfigError`)
   * answers its constructor's name.
   */
  override get name(): string {
    return NAMES.get(this.constructor) ?? this.constructor.name;
  }
  toJSON(): { code: ErrorCode; num: number; message: string } {
    return { code: this.code, num: this.num, message: this.message };
  }
}

/** A malformed byte stream or frame (codes 1xxx). */
export class ProtocolError extends MeshbusError {}
/** The peer refused or ended something in the session (codes 2xxx). */
export class SessionError extends MeshbusError {}
/** A client-side failure: timeout, closed connection, full outbox (codes 3xxx). */
export class ClientError extends MeshbusError {}
/** The durable store could not do what was asked (codes 4xxx). */
export class StoreError extends MeshbusError {}

/** Proto's classes by constructor, with the names they keep in minified bundles (MeshbusError.name). */
const NAMES = new Map<unknown, string>([
  [MeshbusError, 'MeshbusError'],
  [ProtocolError, 'ProtocolError'],
  [SessionError, 'SessionError'],
  [ClientError, 'ClientError'],
  [StoreError, 'StoreError'],
]);

const BY_KIND = { protocol: ProtocolError, session: SessionError, client: ClientError, store: StoreError };

/** Builds the error class that matches a code's kind, e.g. from an ERROR frame. */
export function errorFromCode(code: ErrorCode, detail?: string): MeshbusError {
  return new BY_KIND[ERROR_CODES[code].kind](code, detail);
}

export function isMeshbusError(e: unknown): e is MeshbusError {
  try {
    return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
  } catch {
    // A thrown Proxy whose get trap throws: not ours, and asking must not throw from the catch block that asks.
    return false;
  }
}

/**
 * `String(value)` for a value something threw, which cannot throw itself:
 * `String` throws on an object with no `toString` (`Object.create(null)`)
 * or a throwing one, and a catch block or a rejection handler that throws
 * while describing an error crashes the process it guards.
 */
export function thrownText(value: unknown): string {
  try {
    return String(value);
  } catch {
    try {
      return Object.prototype.toString.call(value);
    } catch {
      return '[unprintable value]'; // a revoked Proxy
    }
  }
}

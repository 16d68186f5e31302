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

export const ERROR_CODES = {
  // 1xxx: the byte stream or a frame is malformed.
  MB_ERR_BAD_MAGIC: { num: 1001, kind: 'protocol', fatal: true, message: 'frame does not start with the meshbus magic' },
  MB_ERR_UNSUPPORTED_VERSION: { num: 1002, kind: 'protocol', fatal: true, message: 'unsupported protocol version' },
  MB_ERR_UNKNOWN_TYPE: { num: 1003, kind: 'protocol', fatal: true, message: 'unknown frame type' },
  MB_ERR_RESERVED_BITS: { num: 1004, kind: 'protocol', fatal: true, message: 'reserved bits or bytes are not zero' },
  MB_ERR_LENGTH_MISMATCH: { num: 1005, kind: 'protocol', fatal: true, message: 'frame lengths disagree' },
  MB_ERR_FRAME_TOO_LARGE: { num: 1006, kind: 'protocol', fatal: false, message: 'frame exceeds the size limit' },
  MB_ERR_BAD_CRC: { num: 1007, kind: 'protocol', fatal: true, message: 'header CRC32C mismatch' },
  MB_ERR_TRUNCATED: { num: 1008, kind: 'protocol', fatal: true, message: 'stream ended inside a frame' },
  MB_ERR_BAD_TOPIC: { num: 1009, kind: 'protocol', fatal: false, message: 'invalid topic' },
  MB_ERR_BAD_BODY: { num: 1010, kind: 'protocol', fatal: false, message: 'control frame body cannot be decoded' },
  MB_ERR_BAD_EXTENSION: { num: 1011, kind: 'protocol', fatal: false, message: 'extension block cannot be decoded' },
  MB_ERR_BAD_HASH: { num: 1012, kind: 'protocol', fatal: false, message: 'topic hash does not match the topic' },
  // 2xxx: the session refused or ended something.
  MB_ERR_HANDSHAKE_TIMEOUT: { num: 2001, kind: 'session', fatal: true, message: 'no HELLO within the handshake timeout' },
  MB_ERR_HANDSHAKE_REQUIRED: { num: 2002, kind: 'session', fatal: true, message: 'frame sent before the handshake' },
  MB_ERR_AUTH_FAILED: { num: 2003, kind: 'session', fatal: true, message: 'authentication failed' },
  MB_ERR_PERMISSION_DENIED: { num: 2004, kind: 'session', fatal: false, message: 'permission denied' },
  MB_ERR_TOKEN_EXPIRED: { num: 2005, kind: 'session', fatal: true, message: 'token expired' },
  MB_ERR_SLOW_CONSUMER: { num: 2006, kind: 'session', fatal: true, message: 'slow consumer' },
  MB_ERR_NO_RESPONDERS: { num: 2007, kind: 'session', fatal: false, message: 'no responders for the request' },
  MB_ERR_TOO_MANY_SUBSCRIPTIONS: { num: 2008, kind: 'session', fatal: false, message: 'subscription limit reached' },
  MB_ERR_TOO_MANY_CONNECTIONS: { num: 2009, kind: 'session', fatal: true, message: 'connection limit reached' },
  MB_ERR_RATE_LIMITED: { num: 2010, kind: 'session', fatal: false, message: 'publish rate limit exceeded' },
  MB_ERR_STALE_CONNECTION: { num: 2011, kind: 'session', fatal: true, message: 'no PONG within the liveness interval' },
  MB_ERR_DRAINING: { num: 2012, kind: 'session', fatal: true, message: 'node is shutting down, reconnect elsewhere' },
  MB_ERR_UNEXPECTED_FRAME: { num: 2013, kind: 'session', fatal: false, message: 'frame type not allowed here' },
  MB_ERR_PAYLOAD_TOO_LARGE: { num: 2014, kind: 'session', fatal: false, message: 'payload exceeds the negotiated limit' },
  MB_ERR_UNKNOWN_SUBSCRIPTION: { num: 2015, kind: 'session', fatal: false, message: 'no such subscription' },
  MB_ERR_EVENTS_DROPPED: { num: 2016, kind: 'session', fatal: false, message: 'events dropped for a slow subscription' },
  MB_ERR_SUBJECT_CHANGED: { num: 2020, kind: 'session', fatal: false, message: 'a refreshed token must have the same subject' },
  MB_ERR_OUT_OF_RANGE: { num: 2021, kind: 'session', fatal: false, message: 'a number or size is past its documented bound' },
  MB_ERR_TOO_MANY_REPLAYS: { num: 2040, kind: 'session', fatal: false, message: 'too many history replays in progress' },
  MB_ERR_AUTH_THROTTLED: { num: 2050, kind: 'session', fatal: true, message: 'too many failed authentications from this address' },
  MB_ERR_BAD_PEER_INFO: { num: 2060, kind: 'session', fatal: false, message: 'invalid node id, name or address from a peer' },
  MB_ERR_TOPOLOGY: { num: 2061, kind: 'session', fatal: true, message: 'link refused: it would make a topology meshbus does not route (a loop)' },
  // 3xxx: raised by a client library, never sent by a node.
  MB_ERR_TIMEOUT: { num: 3001, kind: 'client', fatal: false, message: 'request timed out' },
  MB_ERR_CONNECTION_CLOSED: { num: 3002, kind: 'client', fatal: false, message: 'connection closed' },
  MB_ERR_OUTBOX_FULL: { num: 3003, kind: 'client', fatal: false, message: 'offline outbox is full' },
  MB_ERR_INVALID_ARGUMENT: { num: 3004, kind: 'client', fatal: false, message: 'invalid argument' },
  MB_ERR_CONNECT_FAILED: { num: 3005, kind: 'client', fatal: false, message: 'could not connect to any server' },
  MB_ERR_CODEC: { num: 3006, kind: 'client', fatal: false, message: 'payload codec failed' },
  // 4xxx: durable storage.
  MB_ERR_STORE_UNAVAILABLE: { num: 4001, kind: 'store', fatal: false, message: 'durable store unavailable' },
  MB_ERR_STORE_CORRUPT: { num: 4010, kind: 'store', fatal: false, message: 'stored entry cannot be decoded and was skipped' },
  MB_ERR_NOT_DURABLE: { num: 4020, kind: 'store', fatal: false, message: 'topic is not durable on this node' },
  // 9xxx: anything else a node could not do.
  MB_ERR_INTERNAL: { num: 9001, kind: 'session', fatal: false, message: 'internal error' },
  MB_ERR_CONFIG: { num: 9002, kind: 'session', fatal: true, message: 'invalid configuration' },
  MB_ERR_NOT_FOUND: { num: 9003, kind: 'session', fatal: false, message: 'no such resource' },
  MB_ERR_NOT_READY: { num: 9004, kind: 'session', fatal: false, message: 'node is not ready' },
  MB_ERR_UNSUPPORTED_MEDIA_TYPE: { num: 9010, kind: 'session', fatal: false, message: 'content type not accepted' },
} as const satisfies Record<string, CodeDef>;

export type ErrorCode = keyof typeof ERROR_CODES;

const BY_NUM = new Map<number, ErrorCode>();
for (const [code, def] of Object.entries(ERROR_CODES)) BY_NUM.set(def.num, code as ErrorCode);

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
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    const def = ERROR_CODES[code];
    super(detail ? `${def.message}: ${detail}` : def.message, options);
    this.code = code;
    this.num = def.num;
    this.fatal = def.fatal;
    (this as unknown as Record<symbol, boolean>)[BRAND] = true;
  }
  override get name(): string {
    return this.constructor.name;
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

/** Builds the error class that matches a code's kind, e.g. from an ERROR frame. */
export function errorFromCode(code: ErrorCode, detail?: string): MeshbusError {
  switch (ERROR_CODES[code].kind) {
    case 'protocol':
      return new ProtocolError(code, detail);
    case 'client':
      return new ClientError(code, detail);
    case 'store':
      return new StoreError(code, detail);
    default:
      return new SessionError(code, detail);
  }
}

export function isMeshbusError(e: unknown): e is MeshbusError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}

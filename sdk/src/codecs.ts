import { pack, unpack } from 'msgpackr';
import { ClientError, assertWellFormed, isMeshbusError, utf8Decode, utf8Encode } from '@meshbus/proto';
import { checkKind, invalid, messageOf } from './errors.js';

/** Turns application values into payload bytes and back. */
export interface Codec<T = unknown> {
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** Bytes as they are (no copy). */
export const RawCodec: Codec<Uint8Array> = {
  name: 'raw',
  encode(value) {
    if (!(value instanceof Uint8Array)) throw new ClientError('MB_ERR_CODEC', 'raw codec expects a Uint8Array');
    return value;
  },
  decode: (bytes) => bytes,
};

/** UTF-8 text; a string with a lone surrogate is a ClientError MB_ERR_INVALID_ARGUMENT, invalid UTF-8 received is MB_ERR_CODEC. A leading U+FEFF is kept. */
export const StringCodec: Codec<string> = {
  name: 'string',
  encode(value) {
    if (typeof value !== 'string') throw new ClientError('MB_ERR_CODEC', 'string codec expects a string');
    return utf8Encode(value);
  },
  decode(bytes) {
    const s = utf8Decode(bytes);
    if (s === undefined) throw new ClientError('MB_ERR_CODEC', 'payload is not valid UTF-8');
    return s;
  },
};

/** JSON text in UTF-8. */
export const JsonCodec: Codec<unknown> = {
  name: 'json',
  encode(value) {
    let s: string | undefined;
    try {
      s = JSON.stringify(value);
    } catch (e) {
      throw new ClientError('MB_ERR_CODEC', 'value cannot be encoded as JSON', { cause: e });
    }
    if (s === undefined) throw new ClientError('MB_ERR_CODEC', 'value cannot be encoded as JSON');
    return utf8Encode(s);
  },
  decode(bytes) {
    try {
      return JSON.parse(StringCodec.decode(bytes)) as unknown;
    } catch (e) {
      if (e instanceof ClientError) throw e;
      throw new ClientError('MB_ERR_CODEC', 'payload is not JSON', { cause: e });
    }
  },
};

/**
 * MessagePack via msgpackr. A string anywhere in the value (or a map key)
 * with a lone surrogate is refused (ClientError MB_ERR_INVALID_ARGUMENT):
 * msgpackr would send U+FFFD in its place; so is an object key `__proto__`
 * (decoders rename it).
 */
export const MsgpackCodec: Codec<unknown> = {
  name: 'msgpack',
  encode(value) {
    assertStringsWellFormed(value, new Set());
    try {
      return pack(value) as Uint8Array;
    } catch (e) {
      throw new ClientError('MB_ERR_CODEC', 'value cannot be encoded as msgpack', { cause: e });
    }
  },
  decode(bytes) {
    try {
      return unpack(bytes) as unknown;
    } catch (e) {
      throw new ClientError('MB_ERR_CODEC', 'payload is not msgpack', { cause: e });
    }
  },
};

/** Throws ClientError MB_ERR_INVALID_ARGUMENT when a string in `v` (values, keys; arrays, objects, Maps, Sets) is ill-formed. */
function assertStringsWellFormed(v: unknown, seen: Set<object>): void {
  if (typeof v === 'string') {
    assertWellFormed(v, 'a string in the payload');
    return;
  }
  if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v) || seen.has(v)) return;
  seen.add(v);
  if (Array.isArray(v) || v instanceof Set) for (const x of v) assertStringsWellFormed(x, seen);
  else if (v instanceof Map) {
    for (const [k, x] of v) {
      assertStringsWellFormed(k, seen);
      assertStringsWellFormed(x, seen);
    }
  } else {
    for (const k of Object.keys(v)) {
      if (k === '__proto__') throw invalid('a key "__proto__" in the payload would not round-trip (decoders rename it)');
      assertWellFormed(k, 'a key in the payload');
      assertStringsWellFormed((v as Record<string, unknown>)[k], seen);
    }
  }
}

export type Payload = Uint8Array | string;

/**
 * Payload bytes for a publish: with a codec, `value` goes through it;
 * without one, bytes are sent as they are and strings as UTF-8.
 */
export function toBytes(value: unknown, codec?: Codec<never>): Uint8Array {
  if (codec !== undefined) {
    // An application's codec: what it throws or returns is checked, not trusted (a string was sent as zero bytes); its
    // check reads `encode`, which may be a getter that throws.
    const b = bytesOf(
      viaCodec(() => {
        checkKind('codec', codec, 'codec');
        return (codec as Codec<unknown>).encode(value);
      }, 'encode'),
    );
    if (!b) throw new ClientError('MB_ERR_CODEC', 'codec encode must return a Uint8Array');
    return b;
  }
  if (value === undefined || value === null) return EMPTY;
  const b = bytesOf(value);
  if (b) return b;
  if (typeof value === 'string') return utf8Encode(value);
  throw invalid('payload must be a Uint8Array or a string unless a codec is given');
}

const EMPTY = new Uint8Array(0);

/**
 * `v` as this realm's Uint8Array: itself, or a view of the same memory (no
 * copy) when it comes from another realm (`vm`, jsdom, an iframe), whose
 * Uint8Array fails `instanceof` and was refused. Else undefined.
 */
function bytesOf(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (!ArrayBuffer.isView(v) || Object.prototype.toString.call(v) !== '[object Uint8Array]') return undefined;
  const u = v as Uint8Array;
  return new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
}

/** Runs a codec's `encode` or `decode`: anything it throws that is not a MeshbusError becomes ClientError MB_ERR_CODEC (its `cause`). */
export function viaCodec<T>(run: () => T, what: 'encode' | 'decode'): T {
  try {
    return run();
  } catch (e) {
    throw isMeshbusError(e) ? e : new ClientError('MB_ERR_CODEC', `codec ${what} failed: ${messageOf(e)}`, { cause: e });
  }
}

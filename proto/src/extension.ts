import { pack } from 'msgpackr';
import { MAX_EXT, MAX_EXT_CONTAINERS } from './constants.js';
import { ClientError, ProtocolError } from './errors.js';
import { assertWellFormed } from './utf8.js';
import { decodePlain } from './msgpack-subset.js';

/** Where an event sits in a topic's history: the stream epoch and offset. */
export interface Position {
  epoch: string;
  offset: number;
}

/**
 * The optional extension block between topic and payload: metadata that only
 * some frames carry, so the fixed header stays small. Encoded as one msgpack
 * map with short keys (see SPEC.md "Extension block").
 */
export interface Extension {
  /** Application headers: string keys to string values. */
  headers?: Record<string, string>;
  /** Reply topic of a request. */
  reply?: string;
  /** Position of an event in a durable topic's history. */
  position?: Position;
  /** Trace id of a traced event: the origin node and its request id. */
  trace?: string;
  /** Delayed publish: the node publishes the event this many ms after it received it (durable topics). */
  delay?: number;
}

interface WireExt {
  h?: Record<string, string>;
  r?: string;
  p?: [string, number];
  t?: string;
  d?: number;
}

/**
 * Encodes an extension block; undefined when there is nothing to carry.
 * Refuses what the block cannot carry exactly, with ClientError
 * MB_ERR_INVALID_ARGUMENT (an encoding-side error, raised where the block is
 * made): a header key or value, reply or trace with a lone surrogate, a
 * header named `__proto__`, or a block over MAX_EXT (65,535) bytes.
 */
export function encodeExtension(ext: Extension | undefined): Uint8Array | undefined {
  if (!ext) return undefined;
  const w: WireExt = {};
  let any = false;
  if (ext.headers) {
    let n = 0;
    for (const k of Object.keys(ext.headers)) {
      assertHeaderName(k);
      assertWellFormed(ext.headers[k]!, `header "${k}"`);
      n++;
    }
    if (n > 0) {
      w.h = ext.headers;
      any = true;
    }
  }
  if (ext.reply !== undefined) {
    assertWellFormed(ext.reply, 'reply topic');
    w.r = ext.reply;
    any = true;
  }
  if (ext.position) {
    w.p = [ext.position.epoch, ext.position.offset];
    any = true;
  }
  if (ext.trace !== undefined) {
    assertWellFormed(ext.trace, 'trace id');
    w.t = ext.trace;
    any = true;
  }
  if (ext.delay !== undefined) {
    w.d = ext.delay;
    any = true;
  }
  if (!any) return undefined;
  const bytes = pack(w) as Uint8Array;
  if (bytes.length > MAX_EXT) {
    throw new ClientError('MB_ERR_INVALID_ARGUMENT', `headers, reply and trace encode to ${bytes.length} bytes; an event's extension block holds at most ${MAX_EXT}`);
  }
  return bytes;
}

/**
 * Throws ClientError MB_ERR_INVALID_ARGUMENT for a header name that cannot
 * round-trip: one with a lone surrogate, or `__proto__` (msgpack decoders
 * rename it to keep it off the prototype).
 */
export function assertHeaderName(k: string): void {
  if (k === '__proto__') throw new ClientError('MB_ERR_INVALID_ARGUMENT', 'a header cannot be named "__proto__" (decoders rename it)');
  assertWellFormed(k, 'header name');
}

function isMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  if (!isMap(v)) return false;
  for (const x of Object.values(v)) if (typeof x !== 'string') return false;
  return true;
}

/**
 * Decodes an extension block, validating every field's type. The bytes must
 * first be plain msgpack of the subset every decoder reads alike
 * (assertPlainMsgpack): no extension types, well-formed UTF-8, bounded depth.
 */
export function decodeExtension(bytes: Uint8Array): Extension {
  const w = decodePlain(bytes, MAX_EXT_CONTAINERS, 'MB_ERR_BAD_EXTENSION');
  if (!isMap(w)) throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'not a map');
  const m = w as Record<string, unknown>;
  const ext: Extension = {};
  if (m.h !== undefined) {
    if (!isStringRecord(m.h)) throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'headers must map strings to strings');
    ext.headers = m.h;
  }
  if (m.r !== undefined) {
    if (typeof m.r !== 'string') throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'reply must be a string');
    ext.reply = m.r;
  }
  if (m.p !== undefined) {
    const p = m.p;
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || !Number.isInteger(p[1]) || (p[1] as number) < 0) {
      throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'position must be [epoch, offset]');
    }
    ext.position = { epoch: p[0], offset: p[1] };
  }
  if (m.t !== undefined) {
    if (typeof m.t !== 'string') throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'trace must be a string');
    ext.trace = m.t;
  }
  if (m.d !== undefined) {
    if (!Number.isInteger(m.d) || (m.d as number) < 0) throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'delay must be a non-negative integer (ms)');
    ext.delay = m.d as number;
  }
  return ext;
}

/** Who handed a node an event: a client (TCP, WebSocket, HTTP) or another node over a peer link. */
export type IngressOrigin = 'client' | 'peer';

/**
 * Validates the extension block of a PUB or REQ where it enters a node
 * (SPEC §8, §15.1), before anything routes or stores it: the block must
 * decode with every known key well-typed, a REQ must carry its reply topic
 * `r`, and only a node sets a position `p` — a client's is refused, a peer's
 * (stamped by the node that stored the event) is accepted when well-formed.
 *
 * `ext` is the block's bytes (empty: none). Returns the decoded block
 * (undefined when there is none). Throws ProtocolError MB_ERR_BAD_EXTENSION.
 */
export function checkIngressExtension(ext: Uint8Array, isRequest: boolean, origin: IngressOrigin): Extension | undefined {
  return checkIngressRules(ext.length > 0 ? decodeExtension(ext) : undefined, isRequest, origin);
}

/** The ingress rules of checkIngressExtension on a block already decoded (undefined: none), for callers that decode it once for more checks. */
export function checkIngressRules(decoded: Extension | undefined, isRequest: boolean, origin: IngressOrigin): Extension | undefined {
  if (isRequest && (decoded?.reply === undefined || decoded.reply.length === 0)) {
    throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'a REQ needs a reply topic (extension key r)');
  }
  if (origin === 'client' && decoded?.position !== undefined) {
    throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'position (extension key p) is set by nodes only');
  }
  return decoded;
}

/**
 * A well-formed trace id (SPEC 10.9): 16 lowercase hex digits (64 random bits).
 * Nodes refuse others; the SDK checks at the call with the same rule.
 */
export function isTraceId(id: string): boolean {
  return /^[0-9a-f]{16}$/.test(id);
}

import { pack } from 'msgpackr';
import { ProtocolError } from './errors.js';
import { decodePlain } from './msgpack-subset.js';

/**
 * Control-frame bodies: msgpack maps carried in the payload section of
 * HELLO, WELCOME, SUB, ERROR, GOODBYE and the cluster frames. Decoders check
 * every field they rely on; unknown fields are ignored so later versions can
 * add some.
 */

export interface HelloBody {
  /** Lowest and highest protocol versions the client speaks. */
  v: [number, number];
  /** Bearer token, when the node requires authentication. */
  token?: string;
  /** Free-form client name for the node's connection list. */
  name?: string;
  /** Client library and version, e.g. "meshbus-node/0.1.0". */
  lang?: string;
  /** false: do not deliver the connection's own publishes back to it. Default true. */
  echo?: boolean;
}

export interface WelcomeBody {
  /** Version chosen by the node. */
  v: number;
  /** Node id: 16 hex digits. */
  node: string;
  /** The connection's id on this node (16 hex digits), used as origin of its events. */
  client: string;
  maxPayload: number;
  maxTopic: number;
  /** Interval at which the node pings, in ms; the client should do the same. */
  ping: number;
  /** Client URLs of other nodes of the mesh, for failover. */
  peers: string[];
}

export interface SubBody {
  /** Queue group: each event goes to one member of the group. */
  q?: string;
  /** Slow-consumer policy: 'disconnect' (default) or 'drop'. */
  slow?: 'drop' | 'disconnect';
  /**
   * Resume a durable literal topic after this position [epoch, offset]: the
   * node replays the events after it, then live ones, and answers the SUB
   * with an ACK carrying a SubAckBody. Epoch "" means "from now" (the ACK
   * tells the current position).
   */
  since?: [string, number];
  /** With `q`: a durable work queue (jobs in Redis, ACK/NACK per delivery). */
  durable?: boolean;
  /** false: do not send the latest value of matching `latest` topics. Default true. */
  latest?: boolean;
  /**
   * The subscription ends by itself after this many deliveries (1..2^31),
   * counted by the node: a queue member that reached it is no longer chosen.
   */
  max?: number;
  /**
   * With `since`: the client's reference of this SUB (0..MAX_SUB_REF), echoed
   * in every SubAckBody the node sends for the subscription it makes (its
   * answer and its later gap notices), so the client tells them from those of
   * the subscription this SUB replaced, still on their way (SPEC 15.3).
   */
  ref?: number;
}

/** Largest SUB `ref` (a small uint: 2 bytes of msgpack). */
export const MAX_SUB_REF = 0xffff;

/** Body of UNSUB (optional): with `max`, the subscription ends after `max` more deliveries instead of now. */
export interface UnsubBody {
  max?: number;
}

/**
 * Largest SUB/UNSUB `max`: 2^31, written as a number because a bundler keeps
 * an unused `2 ** 31` (it does not treat the operator as pure) in a client
 * that never checks a SUB body.
 */
export const MAX_SUB_LIMIT = 0x80000000;

/** Body of the ACK that answers a SUB with `since` (and of later ACKs on that sid when a gap cannot be filled). */
export interface SubAckBody {
  /** false: events between the requested position and `offset` are not available (other epoch, trimmed, store down). */
  recovered: boolean;
  epoch: string;
  /** Delivery continues with the events after this offset. */
  offset: number;
  /** The `ref` of the SUB that made the subscription, when it had one; absent from older nodes. */
  ref?: number;
}

/** Body of the ACK that answers a durable PUB: where the event was stored. */
export interface PubAckBody {
  epoch: string;
  offset: number;
}

export interface ErrorBody {
  /** Numeric error code (SPEC.md "Error codes"). */
  code: number;
  message: string;
  /** How many events the error covers (MB_ERR_EVENTS_DROPPED: events dropped since the last report). */
  count?: number;
}

export interface GoodbyeBody {
  code: number;
  reason: string;
  /** Where to reconnect (client URLs); empty means any known server. */
  reconnect?: string[];
  /**
   * true: every PUB with ACK_REQUESTED the node read on this connection was
   * answered before this GOODBYE and none is taken after it (SPEC 10.7): an
   * acked publish without its ACK/NACK was not taken. Anything but `true`
   * (absent, an older node, a value of another type) promises nothing.
   */
  answered?: boolean;
}

export function encodeBody(body: object): Uint8Array {
  return pack(body) as Uint8Array;
}

/**
 * Decodes a msgpack map body of the plain subset (SPEC 8) holding at most
 * `maxContainers` maps and arrays; MB_ERR_BAD_BODY when it is not one.
 * Through proto decodePlain: nodes check the bytes before msgpackr builds
 * anything, the bundles' decoder counts as it goes. Every body another
 * process wrote is decoded with a bound: a body of empty maps is one byte
 * and one object each (a 1 MB one held a node's event loop ~320 ms).
 */
export function decodeBody(bytes: Uint8Array, maxContainers = Infinity): Record<string, unknown> {
  if (bytes.length === 0) return {};
  const v = decodePlain(bytes, maxContainers, 'MB_ERR_BAD_BODY');
  if (typeof v !== 'object' || v === null || !isPlainObject(v)) {
    throw new ProtocolError('MB_ERR_BAD_BODY', 'not a map');
  }
  return v as Record<string, unknown>;
}

/** A msgpack map as unpacked: not an array, byte string, Date (timestamp extension) or other class instance. */
function isPlainObject(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function need(ok: boolean, what: string): void {
  if (!ok) throw new ProtocolError('MB_ERR_BAD_BODY', what);
}
/**
 * A node's answer to a client (WELCOME, ERROR, GOODBYE, the ACKs of durable
 * SUBs and PUBs) holds a few maps and arrays: the body and a list of peers.
 * Bounded before msgpackr builds them (decodeBody's `maxContainers`): a
 * hostile node's 4 MiB WELCOME of empty maps (the SDK's control-body limit)
 * cost a client ~0.6 s of CPU at each connection attempt, and a browser tab
 * (the bundles' decoder, which counts as it decodes) over a second.
 */
const NODE_BODY_CONTAINERS = 8;

const isStr = (v: unknown): v is string => typeof v === 'string';
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isStrArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);

export function decodeHello(bytes: Uint8Array): HelloBody {
  const b = decodeBody(bytes);
  need(Array.isArray(b.v) && b.v.length === 2 && isUint(b.v[0]) && isUint(b.v[1]) && b.v[0] <= b.v[1], 'HELLO.v must be [min, max]');
  need(b.token === undefined || isStr(b.token), 'HELLO.token must be a string');
  need(b.name === undefined || isStr(b.name), 'HELLO.name must be a string');
  need(b.lang === undefined || isStr(b.lang), 'HELLO.lang must be a string');
  need(b.echo === undefined || typeof b.echo === 'boolean', 'HELLO.echo must be a boolean');
  return b as unknown as HelloBody;
}

export function decodeWelcome(bytes: Uint8Array): WelcomeBody {
  const b = decodeBody(bytes, NODE_BODY_CONTAINERS);
  need(isUint(b.v), 'WELCOME.v');
  need(isStr(b.node) && isStr(b.client), 'WELCOME.node/client');
  need(isUint(b.maxPayload) && isUint(b.maxTopic) && isUint(b.ping), 'WELCOME limits');
  need(isStrArray(b.peers), 'WELCOME.peers');
  return b as unknown as WelcomeBody;
}

export function decodeSub(bytes: Uint8Array): SubBody {
  const b = decodeBody(bytes);
  need(b.q === undefined || (isStr(b.q) && b.q.length > 0 && b.q.length <= 256), 'SUB.q must be a non-empty string');
  need(b.slow === undefined || b.slow === 'drop' || b.slow === 'disconnect', "SUB.slow must be 'drop' or 'disconnect'");
  need(b.since === undefined || (Array.isArray(b.since) && b.since.length === 2 && isStr(b.since[0]) && isUint(b.since[1])), 'SUB.since must be [epoch, offset]');
  need(b.durable === undefined || typeof b.durable === 'boolean', 'SUB.durable must be a boolean');
  need(b.durable !== true || b.q !== undefined, 'SUB.durable needs a queue group (q)');
  need(b.latest === undefined || typeof b.latest === 'boolean', 'SUB.latest must be a boolean');
  need(b.max === undefined || isLimit(b.max), `SUB.max must be an integer 1..${MAX_SUB_LIMIT}`);
  need(b.ref === undefined || isRef(b.ref), `SUB.ref must be an integer 0..${MAX_SUB_REF}`);
  return b as SubBody;
}

/** Decodes an UNSUB body (empty: unsubscribe now). */
export function decodeUnsub(bytes: Uint8Array): UnsubBody {
  const b = decodeBody(bytes);
  need(b.max === undefined || isLimit(b.max), `UNSUB.max must be an integer 1..${MAX_SUB_LIMIT}`);
  return b as UnsubBody;
}

const isLimit = (v: unknown): v is number => isUint(v) && v >= 1 && v <= MAX_SUB_LIMIT;
const isRef = (v: unknown): v is number => isUint(v) && v <= MAX_SUB_REF;

/** Decodes the body of an ACK answering a SUB with `since`. */
export function decodeSubAck(bytes: Uint8Array): SubAckBody {
  const b = decodeBody(bytes, NODE_BODY_CONTAINERS);
  need(typeof b.recovered === 'boolean' && isStr(b.epoch) && isUint(b.offset), 'SUB ACK body must be {recovered, epoch, offset}');
  need(b.ref === undefined || isRef(b.ref), 'SUB ACK ref must be a SUB ref');
  return b as unknown as SubAckBody;
}

/** Decodes the body of an ACK answering a durable PUB (empty body: not durable). */
export function decodePubAck(bytes: Uint8Array): PubAckBody | undefined {
  if (bytes.length === 0) return undefined;
  const b = decodeBody(bytes, NODE_BODY_CONTAINERS);
  if (b.epoch === undefined) return undefined;
  need(isStr(b.epoch) && isUint(b.offset), 'PUB ACK body must be {epoch, offset}');
  return b as unknown as PubAckBody;
}

export function decodeError(bytes: Uint8Array): ErrorBody {
  const b = decodeBody(bytes, NODE_BODY_CONTAINERS);
  need(isUint(b.code) && isStr(b.message) && (b.count === undefined || isUint(b.count)), 'ERROR body must be {code, message}');
  return b as unknown as ErrorBody;
}

export function decodeGoodbye(bytes: Uint8Array): GoodbyeBody {
  const b = decodeBody(bytes, NODE_BODY_CONTAINERS);
  need(isUint(b.code) && isStr(b.reason), 'GOODBYE body must be {code, reason}');
  need(b.reconnect === undefined || isStrArray(b.reconnect), 'GOODBYE.reconnect');
  return b as unknown as GoodbyeBody;
}

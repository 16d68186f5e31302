import { FrameType, ProtocolError, SessionError, assertPlainBody, checkIngressRules, decodeExtension, isTraceId, topicProblem, type Extension, type Frame, type HelloBody, type SubBody, type TopicLimits } from '@meshbus/proto';
import { isInboxTopicAt, isNodeOnlyTopic, isNodeOnlyTopicAt } from './auth/reserved-topics.js';

/**
 * The bounds a node puts on every number and size a client sends (SPEC.md
 * 10.10 lists them). Past a bound: a typed error, checked before the value
 * is used. Frame sizes, topic and payload lengths are bounded elsewhere
 * (decoder, options); these are the rest.
 */
export const CLIENT_LIMITS = {
  /** Keys of a HELLO, AUTH or SUB body map. */
  bodyKeys: 16,
  /** Characters of a token (HELLO `token`, AUTH `token`). */
  tokenLength: 6144,
  /** Characters of HELLO `name` and `lang`. */
  nameLength: 256,
  /** Highest protocol version number a HELLO may name (header version is a u8). */
  version: 255,
  /** Characters of a SUB `since` epoch. */
  epochLength: 64,
  /** Largest SUB `since` offset (exact in a double). */
  offset: Number.MAX_SAFE_INTEGER,
  /** Largest `maxHops` on a client's event (the default is 8). */
  maxHops: 16,
  /** How far ahead of the node's clock a client's event timestamp may be, ms (room for skewed device clocks). */
  futureSkewMs: 300_000,
  /** Bytes of a NACK body (its reason is stored with a dead-lettered job). */
  nackBody: 4096,
  /** Longest delayed publish (extension `d`), ms: 30 days. */
  delayMs: 30 * 24 * 3600 * 1000,
  /** Maps and arrays of a HELLO, AUTH, SUB or UNSUB body: the body, HELLO `v`, SUB `since` (and room). */
  controlContainers: 4,
} as const;

function outOfRange(what: string): SessionError {
  return new SessionError('MB_ERR_OUT_OF_RANGE', what);
}

/** Throws SessionError MB_ERR_OUT_OF_RANGE when a map body has more keys than a node reads. */
export function checkBodyKeys(body: Record<string, unknown>, what: string): void {
  let n = 0;
  for (const _ in body) if (++n > CLIENT_LIMITS.bodyKeys) throw outOfRange(`${what} body has more than ${CLIENT_LIMITS.bodyKeys} keys`);
}

/** A token's length (HELLO and AUTH). */
export function checkToken(token: string | undefined): void {
  if (token !== undefined && token.length > CLIENT_LIMITS.tokenLength) throw outOfRange(`token of ${token.length} characters, limit ${CLIENT_LIMITS.tokenLength}`);
}

/** The numbers and sizes of a decoded HELLO. */
export function checkHello(body: HelloBody): void {
  checkBodyKeys(body as unknown as Record<string, unknown>, 'HELLO');
  if (body.v[1] > CLIENT_LIMITS.version) throw outOfRange(`HELLO.v ${body.v[1]}, limit ${CLIENT_LIMITS.version}`);
  checkToken(body.token);
  for (const k of ['name', 'lang'] as const) {
    const s = body[k];
    if (s !== undefined && s.length > CLIENT_LIMITS.nameLength) throw outOfRange(`HELLO.${k} of ${s.length} characters, limit ${CLIENT_LIMITS.nameLength}`);
  }
}

/**
 * The body of a client's HELLO, AUTH, SUB or UNSUB, checked before msgpackr
 * decodes it: at most `maxHelloSize` bytes (a token of tokenLength and the
 * other keys fit) and CLIENT_LIMITS.controlContainers maps and arrays, of
 * the plain subset (proto assertPlainBody). Before, only HELLO was bounded
 * (by the pre-handshake frame limit): an open connection's SUB carried up to
 * `maxPayload`, and 1 MB of empty maps kept the node's event loop ~320 ms
 * per frame (20 frames: 6.4 s of node CPU, every client and peer link
 * stalled meanwhile). SessionError MB_ERR_OUT_OF_RANGE / ProtocolError
 * MB_ERR_BAD_BODY.
 */
export function controlBody(f: Frame, maxBytes: number): Uint8Array {
  if (f.payloadLen > maxBytes) throw outOfRange(`${f.typeName} body of ${f.payloadLen} bytes, limit ${maxBytes} (maxHelloSize)`);
  assertPlainBody(f.payload, CLIENT_LIMITS.controlContainers);
  return f.payload;
}

/** A consumer's ACK or NACK of a durable delivery: the NACK body (a reason) is bounded. */
export function checkSettle(f: Frame): void {
  if (f.payloadLen > CLIENT_LIMITS.nackBody) throw outOfRange(`${f.typeName} body of ${f.payloadLen} bytes, limit ${CLIENT_LIMITS.nackBody}`);
}

/** The numbers and sizes of a decoded SUB body (`q` is bounded by the decoder). */
export function checkSub(body: SubBody): void {
  checkBodyKeys(body as unknown as Record<string, unknown>, 'SUB');
  if (body.since) {
    const [epoch, offset] = body.since;
    if (epoch.length > CLIENT_LIMITS.epochLength) throw outOfRange(`SUB.since epoch of ${epoch.length} characters, limit ${CLIENT_LIMITS.epochLength}`);
    if (offset > CLIENT_LIMITS.offset) throw outOfRange(`SUB.since offset ${offset}, limit ${CLIENT_LIMITS.offset}`);
  }
}

/** The sizes a client's event is held to (node options). */
export interface EventLimits extends TopicLimits {
  /** Largest payload, bytes. */
  maxPayload: number;
  /** Longest topic, bytes. */
  maxTopicLength: number;
}

/**
 * The one check of a client's PUB or REQ (TCP, WebSocket), before anything
 * routes or stores it, in one pass that decodes the extension block once:
 * not on `_TRACE` or `_DLQ` (MB_ERR_PERMISSION_DENIED, topic or reply topic), header
 * numbers (hops 0, sid 0, maxHops, timestamp: MB_ERR_OUT_OF_RANGE) and, when
 * present, the extension block: the reply topic is a valid literal topic
 * (MB_ERR_BAD_TOPIC), the trace id is 16 lowercase hex digits
 * (MB_ERR_BAD_EXTENSION), the delay is bounded (MB_ERR_OUT_OF_RANGE); then
 * the payload size (SessionError MB_ERR_PAYLOAD_TOO_LARGE) and topic length
 * (MB_ERR_BAD_TOPIC); then the ingress rules every publisher meets (proto
 * checkIngressRules: a REQ carries its reply topic, no client position).
 * Returns the decoded extension block, if any (its reply topic for the
 * permission check, its trace id for the trace owner check). Header-only
 * checks cost a few byte reads; the extension block is decoded only when
 * the frame has one.
 */
export function checkClientEvent(f: Frame, limits: EventLimits): Extension | undefined {
  if (f.hops !== 0) throw outOfRange(`hops ${f.hops}: clients send 0`);
  if (f.sid !== 0) throw outOfRange(`sid ${f.sid}: clients send 0`);
  if (f.maxHops > CLIENT_LIMITS.maxHops) throw outOfRange(`maxHops ${f.maxHops}, limit ${CLIENT_LIMITS.maxHops}`);
  // Hop records and dead letters come from nodes only: a client can neither forge one nor make a responder do it.
  if (isNodeOnlyTopicAt(f.buf, f.topicStart, f.topicLen)) throw new SessionError('MB_ERR_PERMISSION_DENIED', `only nodes publish on ${f.topic}`);
  const ts = f.timestamp;
  if (ts !== 0 && ts > Date.now() + CLIENT_LIMITS.futureSkewMs) throw outOfRange(`timestamp ${ts} is more than ${CLIENT_LIMITS.futureSkewMs} ms ahead of the node's clock`);
  const ext = f.extLen === 0 ? undefined : decodeExtension(f.extBytes);
  if (ext === undefined) {
    if (f.traced) throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'a traced event needs a trace id (extension t)');
  } else {
    if (ext.reply !== undefined) {
      const problem = topicProblem(ext.reply, false, limits);
      if (problem) throw new ProtocolError('MB_ERR_BAD_TOPIC', `reply topic: ${problem}`);
      if (isNodeOnlyTopic(ext.reply)) throw new SessionError('MB_ERR_PERMISSION_DENIED', `reply topic ${ext.reply}: only nodes publish there`);
    }
    if (ext.trace !== undefined) {
      if (!isTraceId(ext.trace)) throw new ProtocolError('MB_ERR_BAD_EXTENSION', `trace id "${ext.trace.slice(0, 64)}" must be 16 lowercase hex digits`);
    } else if (f.traced) {
      throw new ProtocolError('MB_ERR_BAD_EXTENSION', 'a traced event needs a trace id (extension t)');
    }
    if (ext.delay !== undefined && ext.delay > CLIENT_LIMITS.delayMs) throw outOfRange(`delay ${ext.delay} ms, limit ${CLIENT_LIMITS.delayMs}`);
  }
  if (f.payloadLen > limits.maxPayload) throw new SessionError('MB_ERR_PAYLOAD_TOO_LARGE', `${f.payloadLen} bytes, limit ${limits.maxPayload}`);
  if (f.topicLen === 0 || f.topicLen > limits.maxTopicLength) throw new ProtocolError('MB_ERR_BAD_TOPIC', `topic of ${f.topicLen} bytes`);
  checkIngressRules(ext, f.type === FrameType.REQ, 'client');
  return ext;
}

/**
 * The correlation of a node's ERROR about a client's frame `f` (SPEC 10.8): `f`'s, but 0 for a reply (a PUB on an
 * `_INBOX.` topic without ACK_REQUESTED). A reply's correlation is its requester's request id, not one of the
 * responder's: with it, a refused reply (a responder without `_INBOX.>` in its publish rules) read as the refusal of the
 * responder's own subscription of that number (SPEC 10.3), ended there and still routed to by the node.
 */
export function answerId(f: Frame): number {
  return f.type === FrameType.PUB && !f.ackRequested && isInboxTopicAt(f.buf, f.topicStart, f.topicLen) ? 0 : f.correlation;
}

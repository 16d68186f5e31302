import { FIXED_SIZE, type FrameType } from './constants.js';
import { ProtocolError } from './errors.js';
import { encodeExtension, type Extension } from './extension.js';
import { writeHeader, type HeaderFields } from './header.js';
import { topicHash } from './topic-hash.js';
import { utf8Length, utf8Write } from './utf8.js';

const EMPTY = new Uint8Array(0);

export interface FrameSpec {
  type: FrameType;
  topic?: string;
  payload?: Uint8Array;
  ext?: Extension;
  flags?: number;
  hops?: number;
  maxHops?: number;
  origin?: Uint8Array;
  seq?: number;
  timestamp?: number;
  correlation?: number;
  /** Subscription id; only a node sets it, on a queue-group delivery. */
  sid?: number;
}

/**
 * Encodes a frame's fixed part, topic and extension into one new buffer and
 * leaves the payload out: send `[head, payload]` as two chunks (one writev)
 * and the payload is never copied.
 */
export function encodeHead(spec: FrameSpec): Uint8Array {
  const topic = spec.topic ?? '';
  const topicLen = utf8Length(topic);
  if (topicLen > 0xffff) throw new ProtocolError('MB_ERR_BAD_TOPIC', `topic of ${topicLen} bytes`);
  const ext = encodeExtension(spec.ext) ?? EMPTY;
  const head = new Uint8Array(FIXED_SIZE + topicLen + ext.length);
  utf8Write(topic, head, FIXED_SIZE);
  head.set(ext, FIXED_SIZE + topicLen);
  const hash = topicLen > 0 ? topicHash(head, FIXED_SIZE, FIXED_SIZE + topicLen) : 0;
  writeHeader(head, 0, headerOf(spec, hash, topicLen, ext.length, spec.payload?.length ?? 0));
  return head;
}

/**
 * The header fields of a frame described by `spec`, once its topic hash and
 * part lengths are known: for encoders that lay the parts out themselves
 * (the SDK writes a tick's frames back to back into one buffer).
 */
export function headerOf(spec: FrameSpec, topicHash: number, topicLen: number, extLen: number, payloadLen: number): HeaderFields {
  return {
    type: spec.type,
    flags: spec.flags,
    hops: spec.hops,
    maxHops: spec.maxHops,
    topicHash,
    origin: spec.origin,
    seq: spec.seq,
    timestamp: spec.timestamp,
    correlation: spec.correlation,
    sid: spec.sid,
    topicLen,
    extLen,
    payloadLen,
  };
}

/** Encodes a whole frame into one buffer (payload copied): simplest for control frames and small events. */
export function encodeFrame(spec: FrameSpec): Uint8Array {
  const head = encodeHead(spec);
  const payload = spec.payload;
  if (!payload || payload.length === 0) return head;
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

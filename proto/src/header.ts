import { crc32c } from './crc32c.js';
import { CRC_COVERED, DEFAULT_MAX_HOPS, FIXED_SIZE, HEADER_SIZE, MAGIC, OFF, VERSION, type FrameType } from './constants.js';
import { writeU16, writeU32, writeU64 } from './bytes.js';
import { ClientError } from './errors.js';

/** The header fields a sender chooses. Lengths are given, never inferred. */
export interface HeaderFields {
  type: FrameType;
  flags?: number;
  hops?: number;
  maxHops?: number;
  topicHash?: number;
  /** Origin id as 8 bytes (node id for events forwarded by nodes, client id otherwise). */
  origin?: Uint8Array;
  seq?: number;
  timestamp?: number;
  correlation?: number;
  topicLen?: number;
  extLen?: number;
  payloadLen?: number;
  /** Subscription id; only a node sets it, on a queue-group delivery. */
  sid?: number;
}

const ZERO_ORIGIN = new Uint8Array(8);

/**
 * Writes the 4-byte prefix and the 60-byte header at `dst[off]` (64 bytes),
 * CRC included. The topic, extension and payload are not touched, so the
 * header can live in its own preallocated slot and the payload be sent as a
 * separate chunk.
 */
export function writeHeader(dst: Uint8Array, off: number, f: HeaderFields): void {
  const topicLen = f.topicLen ?? 0;
  const extLen = f.extLen ?? 0;
  const payloadLen = f.payloadLen ?? 0;
  const origin = f.origin ?? ZERO_ORIGIN;
  if (origin.length !== 8) throw new ClientError('MB_ERR_INVALID_ARGUMENT', `origin must be 8 bytes, got ${origin.length}`);
  writeU32(dst, off + OFF.LENGTH, HEADER_SIZE + topicLen + extLen + payloadLen);
  writeU16(dst, off + OFF.MAGIC, MAGIC);
  dst[off + OFF.VERSION] = VERSION;
  dst[off + OFF.TYPE] = f.type;
  writeU16(dst, off + OFF.FLAGS, f.flags ?? 0);
  dst[off + OFF.HOPS] = f.hops ?? 0;
  dst[off + OFF.MAX_HOPS] = f.maxHops ?? DEFAULT_MAX_HOPS;
  writeU32(dst, off + OFF.TOPIC_HASH, f.topicHash ?? 0);
  dst.set(origin, off + OFF.ORIGIN);
  writeU64(dst, off + OFF.SEQ, f.seq ?? 0);
  writeU64(dst, off + OFF.TIMESTAMP, f.timestamp ?? 0);
  writeU32(dst, off + OFF.CORRELATION, f.correlation ?? 0);
  writeU16(dst, off + OFF.TOPIC_LEN, topicLen);
  writeU16(dst, off + OFF.EXT_LEN, extLen);
  writeU32(dst, off + OFF.PAYLOAD_LEN, payloadLen);
  writeU32(dst, off + OFF.SID, f.sid ?? 0);
  for (let i = OFF.RESERVED; i < OFF.CRC; i++) dst[off + i] = 0;
  writeU32(dst, off + OFF.CRC, crc32c(dst, off, off + CRC_COVERED));
}

/** Recomputes the CRC of the header at `buf[off]` after a field was patched. */
export function resealHeader(buf: Uint8Array, off: number): void {
  writeU32(buf, off + OFF.CRC, crc32c(buf, off, off + CRC_COVERED));
}

/**
 * Sets the hop count of a frame in place and reseals it: the only change a
 * node makes to an event it forwards to a peer.
 */
export function patchHops(buf: Uint8Array, off: number, hops: number): void {
  buf[off + OFF.HOPS] = hops;
  resealHeader(buf, off);
}

export { FIXED_SIZE };

import {
  FIXED_SIZE,
  Flags,
  Frame,
  FrameType,
  HEADER_SIZE,
  OFF,
  decodeExtension,
  encodeBody,
  encodeExtension,
  encodeFrame,
  refusalFrame,
  readU16,
  readU32,
  resealHeader,
  writeU16,
  writeU32,
  type Extension,
  type Position,
  type SubAckBody,
} from '@meshbus/proto';

/**
 * The frame `src` with `position` in its extension block (other extension
 * keys kept, ACK_REQUESTED cleared: the publisher's ack is not the
 * receivers' business). One new buffer per event: the head is re-encoded,
 * the payload copied once (never per receiver).
 */
export function withPosition(src: Uint8Array, position: Position, patch?: { correlation?: number; ackRequested?: boolean }): Frame {
  const topicLen = readU16(src, OFF.TOPIC_LEN);
  const extLen = readU16(src, OFF.EXT_LEN);
  const payloadLen = readU32(src, OFF.PAYLOAD_LEN);
  const extStart = FIXED_SIZE + topicLen;
  const ext: Extension = extLen > 0 ? decodeExtension(src.subarray(extStart, extStart + extLen)) : {};
  ext.position = position;
  const extBytes = encodeExtension(ext)!;
  const out = new Uint8Array(FIXED_SIZE + topicLen + extBytes.length + payloadLen);
  out.set(src.subarray(0, extStart), 0);
  out.set(extBytes, extStart);
  out.set(src.subarray(extStart + extLen, extStart + extLen + payloadLen), extStart + extBytes.length);
  writeU32(out, OFF.LENGTH, HEADER_SIZE + topicLen + extBytes.length + payloadLen);
  writeU16(out, OFF.EXT_LEN, extBytes.length);
  let flags = readU16(out, OFF.FLAGS) & ~Flags.ACK_REQUESTED;
  if (patch?.ackRequested) flags |= Flags.ACK_REQUESTED;
  writeU16(out, OFF.FLAGS, flags);
  if (patch?.correlation !== undefined) writeU32(out, OFF.CORRELATION, patch.correlation);
  writeU32(out, OFF.SID, 0);
  resealHeader(out, 0);
  return new Frame(out, 0, out.length);
}

/** A copy of a frame with other correlation / ACK_REQUESTED (durable queue deliveries). */
export function withDelivery(src: Uint8Array, correlation: number): Frame {
  const out = new Uint8Array(src.length);
  out.set(src);
  writeU16(out, OFF.FLAGS, readU16(out, OFF.FLAGS) | Flags.ACK_REQUESTED);
  writeU32(out, OFF.CORRELATION, correlation);
  writeU32(out, OFF.SID, 0);
  resealHeader(out, 0);
  return new Frame(out, 0, out.length);
}

/** The position in a frame's extension block, if any (undefined also when the block is malformed). */
export function positionOf(f: Frame): Position | undefined {
  if (f.extLen === 0) return undefined;
  try {
    return f.ext?.position;
  } catch {
    return undefined;
  }
}

/** The ACK answering a SUB with `since`, or a later gap notice of its subscription (with the SUB's `ref` when it had one). */
export function subAckFrame(sid: number, body: SubAckBody): Uint8Array {
  return encodeFrame({ type: FrameType.ACK, correlation: sid, payload: encodeBody(body) });
}

/**
 * A durable publish refused (MB_ERR_STORE_UNAVAILABLE, MB_ERR_STORE_FULL past a quota, or
 * MB_ERR_STORE_CORRUPT for a key only an operator can remove): NACK on `ack` when the
 * publisher asked for one, else ERROR on its correlation.
 */
export function refusal(ack: number, correlation: number, detail: string, code: 'MB_ERR_STORE_UNAVAILABLE' | 'MB_ERR_STORE_FULL' | 'MB_ERR_STORE_CORRUPT' = 'MB_ERR_STORE_UNAVAILABLE'): Uint8Array {
  return refusalFrame(code, ack >= 0 ? ack : correlation, ack >= 0, detail);
}

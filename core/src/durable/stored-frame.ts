import { Frame, FrameType, StoreError, decodeExtension, decodeFrames, topicHash } from '@meshbus/proto';

/**
 * Decodes a frame read back from Redis (history entry, latest value, work
 * queue or delayed job). Redis is shared and can hold anything (a bug, an
 * operator, another program, an older node writing before validation), so
 * nothing read there is trusted: it must be exactly one well-formed PUB
 * (magic, CRC, lengths), with a valid UTF-8 topic matching its hash — and
 * `topic` when given — and a decodable extension block.
 *
 * Returns the frame (over `bytes`, not a copy). Throws StoreError
 * MB_ERR_STORE_CORRUPT saying what is wrong; callers skip the entry.
 */
export function readStoredFrame(bytes: Uint8Array, topic?: string): Frame {
  let frames: Frame[];
  try {
    frames = decodeFrames(bytes, { maxFrameLength: Math.max(bytes.length, 64) });
  } catch (e) {
    throw new StoreError('MB_ERR_STORE_CORRUPT', `not a frame (${(e as Error).message})`);
  }
  if (frames.length !== 1) throw new StoreError('MB_ERR_STORE_CORRUPT', `${frames.length} frames instead of one`);
  const f = frames[0]!;
  if (f.type !== FrameType.PUB) throw new StoreError('MB_ERR_STORE_CORRUPT', `a ${f.typeName} frame, not a PUB`);
  try {
    const t = f.topic;
    if (topicHash(f.topicBytes) !== f.topicHash) throw new Error('topic hash mismatch');
    if (topic !== undefined && t !== topic) throw new Error(`topic "${t}" instead of "${topic}"`);
    if (f.extLen > 0) decodeExtension(f.extBytes);
  } catch (e) {
    throw new StoreError('MB_ERR_STORE_CORRUPT', (e as Error).message);
  }
  return f;
}

/** A store position's epoch as nodes make them (16 hex digits, see ids.ts); anything else in Redis is corrupt. */
export function isEpoch(v: string): boolean {
  return /^[0-9a-f]{16}$/.test(v);
}

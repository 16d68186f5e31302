import { readU32 } from './bytes.js';
import { BATCH_BYTES, WS_LARGE_FRAME, WS_MESSAGE_BYTES } from './constants.js';

/**
 * The most bytes a WebSocket message may reach with a frame of `frameBytes`
 * added to it (SPEC §2): WS_MESSAGE_BYTES for a frame of WS_LARGE_FRAME
 * bytes or more, BATCH_BYTES for a smaller one. (The first frame of a
 * message goes whatever its size.)
 */
export function messageLimit(frameBytes: number): number {
  return frameBytes >= WS_LARGE_FRAME ? WS_MESSAGE_BYTES : BATCH_BYTES;
}

/**
 * Where a WebSocket message that already holds `held` bytes ends when the
 * whole frames `buf[start, end)` are added to it (SPEC §2): before the
 * first frame that would take it past its messageLimit, `end` when all of
 * them fit. `start` when the first does not fit: the message is sent as it
 * is, and the frames start the next one (an empty message takes any frame:
 * a larger one goes alone). The bytes must be whole frames laid back to
 * back (a sender's own batch, a node's run of events): the length prefixes
 * are trusted.
 */
export function messageEnd(buf: Uint8Array, start: number, end: number, held = 0): number {
  if (held + end - start <= WS_MESSAGE_BYTES) return end;
  for (let off = start; off < end; ) {
    const len = 4 + readU32(buf, off);
    const size = held + off - start;
    if (size > 0 && size + len > messageLimit(len)) return off;
    off += len;
  }
  return end;
}

import { readU32 } from './bytes.js';
import { WS_MESSAGE_BYTES } from './constants.js';

/**
 * Where the first WebSocket message made of the whole frames `buf[start,
 * end)` ends (SPEC §2): after as many frames as fit in `max` bytes
 * (default WS_MESSAGE_BYTES), and after the first one at least (a single
 * larger frame goes alone). `end` when all of them fit. The bytes must be
 * whole frames laid back to back (a sender's own batch, a node's run of
 * events): the length prefixes are trusted.
 */
export function messageEnd(buf: Uint8Array, start: number, end: number, max = WS_MESSAGE_BYTES): number {
  if (end - start <= max) return end;
  let off = start + 4 + readU32(buf, start);
  while (off < end) {
    const next = off + 4 + readU32(buf, off);
    if (next - start > max) return off;
    off = next;
  }
  return end;
}

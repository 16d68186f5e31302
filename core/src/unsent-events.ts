import { FrameType, OFF, readU32 } from '@meshbus/proto';

/**
 * Events (PUB and REQ frames) among whole frames laid back to back in
 * `chunks`, the first starting at stream offset `start`, that end past
 * stream offset `taken`: what a socket closed with these bytes unsent lost.
 * Runs at a close only (the chunks are joined when there are several), so
 * a write path pays nothing per event for it.
 */
export function eventsPast(chunks: readonly Uint8Array[], start: number, taken: number): number {
  if (chunks.length === 0) return 0;
  const b = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  let lost = 0;
  for (let at = 0; at + 8 <= b.length; ) {
    const next = at + 4 + readU32(b, at);
    if (next <= at) break;
    const type = b[at + OFF.TYPE];
    if (start + next > taken && (type === FrameType.PUB || type === FrameType.REQ)) lost++;
    at = next;
  }
  return lost;
}

/** Events in whole frames `buf[start, end)` (all of them; a frame's first chunk counts it when the rest is another chunk). */
export function eventsIn(buf: Uint8Array, start = 0, end = buf.length): number {
  return eventsPast([buf.subarray(start, end)], 0, -1);
}

import { FIXED_SIZE, OFF } from './constants.js';
import { SCAN_META, SCAN_REPEAT, SCAN_SLOTS, jsScanner, type FrameScanner } from './frame-scanner.js';

/**
 * The TypeScript scanner with `repeats` (frame-scanner.ts, SCAN_REPEAT): a
 * node's scanner when the native addon is missing. Kept apart from
 * jsScanner so that clients, which never ask for repeats, do not carry it
 * (the browser bundle).
 */
export const jsRepeatScanner: FrameScanner = {
  name: 'js',
  scan(buf: Uint8Array, start: number, end: number, maxFrameLength: number, out: Uint32Array, repeats = false): number {
    const count = jsScanner.scan(buf, start, end, maxFrameLength, out);
    if (repeats && count > 1) markRepeats(buf, out, count);
    return count;
  },
};

/** Sets SCAN_REPEAT on each of the `count` frames reported in `out` whose header and topic repeat the one before it. */
function markRepeats(buf: Uint8Array, out: Uint32Array, count: number): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let prev = out[SCAN_META]!;
  for (let i = 1; i < count; i++) {
    const o = SCAN_META + i * SCAN_SLOTS;
    const p = out[o]!;
    if (sameHead(dv, p, prev)) out[o + 2] = out[o + 2]! | SCAN_REPEAT;
    prev = p;
  }
}

/** Whether the frames at `a` and `b` have the same header but for lengths and CRC, and the same topic. */
function sameHead(dv: DataView, a: number, b: number): boolean {
  // Words through a DataView: a third of the cost of the same bytes one by one.
  for (let i = OFF.MAGIC; i < OFF.PAYLOAD_LEN; i += 4) if (dv.getUint32(a + i) !== dv.getUint32(b + i)) return false;
  if (dv.getUint32(a + OFF.SID) !== dv.getUint32(b + OFF.SID) || dv.getUint32(a + OFF.RESERVED) !== dv.getUint32(b + OFF.RESERVED)) return false;
  const end = FIXED_SIZE + dv.getUint16(a + OFF.TOPIC_LEN);
  let i = FIXED_SIZE;
  for (; i + 4 <= end; i += 4) if (dv.getUint32(a + i) !== dv.getUint32(b + i)) return false;
  for (; i < end; i++) if (dv.getUint8(a + i) !== dv.getUint8(b + i)) return false;
  return true;
}

import { FIXED_SIZE, OFF } from './constants.js';
import { SCAN_META, SCAN_REPEAT, SCAN_SLOTS, jsScanner, type FrameScanner } from './frame-scanner.js';

/**
 * What a scanner asked for repeats compares (FrameScanner.scan's `repeats`, frame-scanner.ts): nothing; the header
 * but for lengths and CRC (a client's PUBs: the node stamps them); or that but for the sequence and timestamp too
 * (a peer's events, each stamped by its origin). Here, not in frame-scanner.ts: clients never ask for repeats.
 */
export const Repeats = { NONE: 0, HEADER: 1, UNSTAMPED: 2 } as const;
export type Repeats = (typeof Repeats)[keyof typeof Repeats];

/** `s` asking for `repeats` at every call (a scanner without them, such as jsScanner, marks none). */
export function repeatingScanner(s: FrameScanner, repeats: Repeats): FrameScanner {
  return { name: s.name, scan: (buf, start, end, max, out) => s.scan(buf, start, end, max, out, repeats) };
}

/**
 * The TypeScript scanner with `repeats` (frame-scanner.ts, SCAN_REPEAT): a
 * node's scanner when the native addon is missing. Kept apart from
 * jsScanner so that clients, which never ask for repeats, do not carry it
 * (the browser bundle).
 */
export const jsRepeatScanner: FrameScanner = {
  name: 'js',
  scan(buf: Uint8Array, start: number, end: number, maxFrameLength: number, out: Uint32Array, repeats: boolean | Repeats = false): number {
    const count = jsScanner.scan(buf, start, end, maxFrameLength, out);
    if (repeats && count > 1) markRepeats(buf, out, count, repeats === Repeats.UNSTAMPED);
    return count;
  },
};

/** Sets SCAN_REPEAT on each of the `count` frames reported in `out` whose header (`unstamped`: but for sequence and timestamp) and topic repeat the one before it. */
function markRepeats(buf: Uint8Array, out: Uint32Array, count: number, unstamped: boolean): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let prev = out[SCAN_META]!;
  for (let i = 1; i < count; i++) {
    const o = SCAN_META + i * SCAN_SLOTS;
    const p = out[o]!;
    if (sameHead(dv, p, prev, unstamped)) out[o + 2] = out[o + 2]! | SCAN_REPEAT;
    prev = p;
  }
}

/** Whether the frames at `a` and `b` have the same header but for lengths and CRC (`unstamped`: sequence and timestamp), and the same topic. */
function sameHead(dv: DataView, a: number, b: number, unstamped: boolean): boolean {
  // Words through a DataView: a third of the cost of the same bytes one by one.
  for (let i = OFF.MAGIC; i < OFF.SEQ; i += 4) if (dv.getUint32(a + i) !== dv.getUint32(b + i)) return false;
  if (!unstamped) for (let i = OFF.SEQ; i < OFF.CORRELATION; i += 4) if (dv.getUint32(a + i) !== dv.getUint32(b + i)) return false;
  for (let i = OFF.CORRELATION; i < OFF.PAYLOAD_LEN; i += 4) if (dv.getUint32(a + i) !== dv.getUint32(b + i)) return false;
  if (dv.getUint32(a + OFF.SID) !== dv.getUint32(b + OFF.SID) || dv.getUint32(a + OFF.RESERVED) !== dv.getUint32(b + OFF.RESERVED)) return false;
  const end = FIXED_SIZE + dv.getUint16(a + OFF.TOPIC_LEN);
  let i = FIXED_SIZE;
  for (; i + 4 <= end; i += 4) if (dv.getUint32(a + i) !== dv.getUint32(b + i)) return false;
  for (; i < end; i++) if (dv.getUint8(a + i) !== dv.getUint8(b + i)) return false;
  return true;
}

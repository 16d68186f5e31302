import { crc32c } from './crc32c.js';
import { CRC_COVERED, FIXED_SIZE, HEADER_SIZE, KNOWN_FLAGS, MAGIC, OFF, VERSION, isKnownType } from './constants.js';
import { ERROR_CODES } from './errors.js';
import { readU16, readU32 } from './bytes.js';

/**
 * The scanning contract shared by this TypeScript implementation and the
 * native addon: one call walks a chunk, validates every complete header and
 * reports frames as offsets into the caller's buffer. Nothing is copied.
 *
 * `out` layout (Uint32Array):
 *   out[0] number of frames reported
 *   out[1] stop position: where the next unread frame starts
 *   out[2] 0, or the numeric error code of the frame at the stop position
 *   out[3] the length field (bytes after the prefix) of the frame at the stop
 *          position when its header is complete and valid or only too large,
 *          else 0
 *   then four slots per frame, from out[4]:
 *     start offset, total size, type | flags << 8 (| SCAN_REPEAT), topic hash
 *
 * With `repeats` (Repeats.HEADER, or `true`; frame-repeats.ts), a scanner that supports it
 * (the native addon's, jsRepeatScanner in frame-repeats.ts; not jsScanner,
 * which clients and browsers carry) marks a frame whose header and topic
 * repeat those of the frame reported just before it in the same call with
 * SCAN_REPEAT in its third slot: bytes [4, 48) and [52, 60) of the header
 * (all but the length prefix, the payload length and the CRC) and the topic
 * bytes are equal. With Repeats.UNSTAMPED the sequence and timestamp
 * ([24, 40)) are left out of the compare too: a peer's events each carry
 * their origin's own. A check that reads only the compared bytes gives both
 * frames the same answer, so a node can skip it for the second
 * (core/src/publish-run.ts). Compared before the caller sees either frame: a
 * node stamping the first in place does not change the answer.
 *
 * Scanning stops at the first incomplete frame, at the first error, or when
 * `out` is full. Checks run in the order of SPEC.md "Validation", so both
 * implementations report the same error for the same bytes.
 */
export interface FrameScanner {
  readonly name: 'js' | 'native';
  /** `repeats`: frame-repeats.ts Repeats (0, 1, 2), `true` for Repeats.HEADER. */
  scan(buf: Uint8Array, start: number, end: number, maxFrameLength: number, out: Uint32Array, repeats?: boolean | 0 | 1 | 2): number;
}

export const SCAN_META = 4;
export const SCAN_SLOTS = 4;
/** The bit of a frame's third slot that says it repeats the header and topic of the frame before it (above). */
export const SCAN_REPEAT = 1 << 24;

const E_BAD_MAGIC = ERROR_CODES.MB_ERR_BAD_MAGIC.num;
const E_BAD_CRC = ERROR_CODES.MB_ERR_BAD_CRC.num;
const E_VERSION = ERROR_CODES.MB_ERR_UNSUPPORTED_VERSION.num;
const E_TYPE = ERROR_CODES.MB_ERR_UNKNOWN_TYPE.num;
const E_RESERVED = ERROR_CODES.MB_ERR_RESERVED_BITS.num;
const E_LENGTH = ERROR_CODES.MB_ERR_LENGTH_MISMATCH.num;
const E_TOO_LARGE = ERROR_CODES.MB_ERR_FRAME_TOO_LARGE.num;

/**
 * Validates the header at `buf[p]` (64 bytes must be available). Returns 0
 * when valid, else the numeric error code.
 */
export function checkHeader(buf: Uint8Array, p: number, maxFrameLength: number): number {
  if (readU16(buf, p + OFF.MAGIC) !== MAGIC) return E_BAD_MAGIC;
  if (crc32c(buf, p, p + CRC_COVERED) !== readU32(buf, p + OFF.CRC)) return E_BAD_CRC;
  if (buf[p + OFF.VERSION] !== VERSION) return E_VERSION;
  if (!isKnownType(buf[p + OFF.TYPE]!)) return E_TYPE;
  if ((readU16(buf, p + OFF.FLAGS) & ~KNOWN_FLAGS) !== 0) return E_RESERVED;
  for (let i = OFF.RESERVED; i < OFF.CRC; i++) if (buf[p + i] !== 0) return E_RESERVED;
  const length = readU32(buf, p);
  const parts = HEADER_SIZE + readU16(buf, p + OFF.TOPIC_LEN) + readU16(buf, p + OFF.EXT_LEN) + readU32(buf, p + OFF.PAYLOAD_LEN);
  if (length !== parts) return E_LENGTH;
  if (length > maxFrameLength) return E_TOO_LARGE;
  return 0;
}

function scan(buf: Uint8Array, start: number, end: number, maxFrameLength: number, out: Uint32Array): number {
  const cap = ((out.length - SCAN_META) / SCAN_SLOTS) | 0;
  let count = 0;
  let p = start;
  let err = 0;
  let pendingSize = 0;
  while (count < cap) {
    const avail = end - p;
    if (avail < 6) break;
    if (readU16(buf, p + OFF.MAGIC) !== MAGIC) {
      err = E_BAD_MAGIC;
      break;
    }
    if (avail < FIXED_SIZE) break;
    err = checkHeader(buf, p, maxFrameLength);
    if (err !== 0) {
      if (err === E_TOO_LARGE) pendingSize = readU32(buf, p);
      break;
    }
    const size = readU32(buf, p) + 4;
    if (size > avail) {
      pendingSize = size - 4;
      break;
    }
    const o = SCAN_META + count * SCAN_SLOTS;
    out[o] = p;
    out[o + 1] = size;
    out[o + 2] = buf[p + OFF.TYPE]! | (readU16(buf, p + OFF.FLAGS) << 8);
    out[o + 3] = readU32(buf, p + OFF.TOPIC_HASH);
    count++;
    p += size;
  }
  out[0] = count;
  out[1] = p;
  out[2] = err;
  out[3] = pendingSize;
  return count;
}

/** The pure TypeScript scanner; runs anywhere. Ignores `repeats` (jsRepeatScanner does not). */
export const jsScanner: FrameScanner = { name: 'js', scan };

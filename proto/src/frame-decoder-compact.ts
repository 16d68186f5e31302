/**
 * The streaming frame decoder of frame-decoder.ts in a client's size: the
 * same class, options, results and errors (the decoder tests and the fuzz
 * campaign run over both), without the batched scanner contract a node
 * needs (native scanner, shared scan buffer, 256 frames per call). Each
 * header is checked by frame-scanner.ts's checkHeader when it is reached,
 * so a limit changed by a frame handler applies to the next frame. The
 * SDK's browser and mobile bundles use it in place of frame-decoder.ts
 * (their build swaps the module); the `scanner` option is ignored.
 */
import { DEFAULT_MAX_FRAME, FIXED_SIZE, MAGIC, OFF } from './constants.js';
import { ProtocolError, codeFromNumber } from './errors.js';
import { Frame } from './frame.js';
import { checkHeader } from './frame-scanner.js';
import { readU16, readU32 } from './bytes.js';
import type { FrameDecoderOptions } from './frame-decoder.js';

export type { FrameDecoderOptions } from './frame-decoder.js';

const E_TOO_LARGE = 1006;
/** First reassembly buffer of a split frame; it grows (doubling) as bytes arrive, never to what the length field claims. */
const PART_MIN = 64 * 1024;

export class FrameDecoder {
  /** Largest accepted value of the length field; a change applies to the next frame. */
  limit: number;
  /** The fatal error that stopped this decoder, if any. */
  failed: ProtocolError | undefined;
  /** Bytes of a frame being reassembled across chunks. */
  private part: Uint8Array | undefined;
  private partLen = 0;
  /** Size of the frame being reassembled once its header is validated; 0 while only the header is collected. */
  private want = 0;
  /** Bytes of an oversized frame still to discard. */
  private skip = 0;

  constructor(options: FrameDecoderOptions = {}) {
    this.limit = options.maxFrameLength ?? DEFAULT_MAX_FRAME;
  }

  /** Bytes held back waiting for the rest of a frame. */
  get buffered(): number {
    return this.partLen;
  }

  /**
   * Decodes `chunk`, calling `onFrame` for each complete frame (a view into
   * `chunk`, or into its own buffer when it straddled chunks) and `onError`
   * for each error (after a fatal one, nothing more). Never throws for bad input.
   */
  push(chunk: Uint8Array, onFrame: (f: Frame) => void, onError: (e: ProtocolError) => void): void {
    const n = chunk.length;
    let pos = 0;
    while (!this.failed && pos < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - pos);
        this.skip -= k;
        pos += k;
      } else if (this.partLen > 0) {
        // Append what the frame still needs (before its header is validated: what the header needs).
        const k = Math.min((this.want || FIXED_SIZE) - this.partLen, n - pos);
        this.append(chunk, pos, pos + k);
        pos += k;
        const part = this.part!;
        if (this.want === 0) {
          const size = this.header(part, 0, this.partLen, onError);
          if (size < 0) {
            // Too large (the header's bytes are consumed) or fatal.
            this.skip = Math.max(0, this.skip - this.partLen);
            this.part = undefined;
            this.partLen = 0;
          }
          if (size <= 0) continue;
          this.want = size;
        }
        if (this.partLen === this.want) {
          const size = this.want;
          this.part = undefined;
          this.partLen = this.want = 0;
          onFrame(new Frame(part, 0, size));
        }
      } else {
        const size = this.header(chunk, pos, n - pos, onError);
        if (size > 0 && size <= n - pos) {
          onFrame(new Frame(chunk, pos, pos + size));
          pos += size;
        } else if (size >= 0) {
          // An incomplete frame: keep its bytes for the next chunk.
          this.want = size;
          this.append(chunk, pos, n);
          pos = n;
        }
      }
    }
  }

  /**
   * Checks the header at `buf[p]` with `avail` bytes present: the frame's
   * size when valid, 0 when more bytes are needed, -1 after reporting an
   * error (too large: the frame is skipped; else fatal).
   */
  private header(buf: Uint8Array, p: number, avail: number, onError: (e: ProtocolError) => void): number {
    if (avail < 6) return 0;
    let err = readU16(buf, p + OFF.MAGIC) !== MAGIC ? 1001 : 0;
    if (err === 0) {
      if (avail < FIXED_SIZE) return 0;
      err = checkHeader(buf, p, this.limit);
      if (err === 0) return readU32(buf, p) + 4;
    }
    if (err === E_TOO_LARGE) {
      const size = readU32(buf, p) + 4;
      onError(new ProtocolError('MB_ERR_FRAME_TOO_LARGE', `${size - 4} bytes, limit ${this.limit}`));
      this.skip = size;
    } else {
      this.fail(new ProtocolError(codeFromNumber(err), buf === this.part ? 'in a frame split across chunks' : `at stream offset ${p}`), onError);
    }
    return -1;
  }

  /** Appends `src[from, to)` to the frame being reassembled, growing its buffer by doubling up to the frame's size. */
  private append(src: Uint8Array, from: number, to: number): void {
    const need = this.partLen + to - from;
    let part = this.part;
    if (!part || need > part.length) {
      const grown = new Uint8Array(Math.min(this.want || FIXED_SIZE, Math.max(need, 2 * (part?.length ?? 0), PART_MIN)));
      if (part) grown.set(part.subarray(0, this.partLen));
      this.part = part = grown;
    }
    part.set(src.subarray(from, to), this.partLen);
    this.partLen = need;
  }

  /** Declares the end of the stream: MB_ERR_TRUNCATED when a frame was left incomplete. */
  end(onError: (e: ProtocolError) => void): void {
    if (!this.failed && (this.partLen > 0 || this.skip > 0)) {
      this.fail(new ProtocolError('MB_ERR_TRUNCATED', `${this.partLen || this.skip} bytes of an incomplete frame`), onError);
    }
  }

  /** Drops any partial frame and error state, e.g. after a reconnect. */
  reset(): void {
    this.part = undefined;
    this.partLen = this.want = this.skip = 0;
    this.failed = undefined;
  }

  private fail(e: ProtocolError, onError: (e: ProtocolError) => void): void {
    this.failed = e;
    this.part = undefined;
    this.partLen = this.want = 0;
    onError(e);
  }
}

/** Decodes a complete byte string into frames; throws the first ProtocolError (tests and tools). */
export function decodeFrames(bytes: Uint8Array, options?: FrameDecoderOptions): Frame[] {
  const frames: Frame[] = [];
  let error: ProtocolError | undefined;
  const d = new FrameDecoder(options);
  const onError = (e: ProtocolError): void => {
    error ??= e;
  };
  d.push(bytes, (f) => frames.push(f), onError);
  d.end(onError);
  if (error) throw error;
  return frames;
}

import { DEFAULT_MAX_FRAME, FIXED_SIZE } from './constants.js';
import { ProtocolError, codeFromNumber } from './errors.js';
import { Frame } from './frame.js';
import { SCAN_META, SCAN_REPEAT, SCAN_SLOTS, jsScanner, type FrameScanner } from './frame-scanner.js';

export interface FrameDecoderOptions {
  /** Largest accepted value of the length field. */
  maxFrameLength?: number;
  /** Scanner implementation: the TypeScript one by default, the native addon's in a node. */
  scanner?: FrameScanner;
  /**
   * Bytes the decoder may allocate ahead of what a split frame needs now
   * (a node's input budget room): reassembly buffers grow by doubling within
   * it, and to the bytes that arrived past it. Default: no bound.
   */
  room?: () => number;
}

/**
 * Where a decoder hands frames: `repeat` as the scanner's SCAN_REPEAT says
 * (a scanner asked for repeats, e.g. a node's client sessions: it then skips
 * the checks the frame before passed); false for a reassembled frame.
 */
export type FrameHandler = (f: Frame, repeat?: boolean) => void;

/** Frames scanned per scanner call; the decoder loops when a chunk holds more. */
const BATCH = 256;
const E_TOO_LARGE = 1006;
/**
 * First reassembly buffer of a frame split across chunks. It then grows
 * (doubling) as the frame's bytes arrive, so memory follows what the peer
 * actually sent, never what its length field claims.
 */
const PART_MIN = 64 * 1024;
/** Words of the scanner's output for one call (4 KiB). */
const SCAN_WORDS = SCAN_META + BATCH * SCAN_SLOTS;
/**
 * The scanner's output buffer is scratch, needed only during push(): one is
 * shared by every decoder of the thread instead of 4 KiB per decoder (per
 * connection: a node with 10,000 idle connections held 40 MiB of them).
 * push() takes it and gives it back, so a push nested in an onFrame callback
 * (another decoder fed synchronously) gets a buffer of its own, never the
 * outer call's.
 */
let spareScan: Uint32Array | undefined;
const NO_SCAN = new Uint32Array(0);

/**
 * Streaming frame decoder. Feed it chunks as they arrive, split anywhere;
 * it hands back frames whose bytes are views into the received chunk. Bytes
 * are copied only for a frame that straddles two chunks.
 *
 * A fatal ProtocolError (bad magic, CRC, version, type, reserved bits,
 * lengths) stops the decoder: the stream can no longer be trusted. A frame
 * over the size limit whose header is otherwise valid is reported
 * (MB_ERR_FRAME_TOO_LARGE) and skipped without buffering it, and decoding
 * continues with the next frame.
 */
export class FrameDecoder {
  private maxFrameLength: number;
  private readonly scanner: FrameScanner;
  /** The scanner's output while a push() runs (see spareScan). */
  private out: Uint32Array = NO_SCAN;
  /** Bytes of a frame being reassembled across chunks. */
  private part: Uint8Array | undefined;
  private partLen = 0;
  /** Size of the frame being reassembled once its header is validated; 0 while only the header is collected. */
  private want = 0;
  /** Bytes of an oversized frame still to discard. */
  private skip = 0;
  private failure: ProtocolError | undefined;
  private readonly room: (() => number) | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    this.maxFrameLength = options.maxFrameLength ?? DEFAULT_MAX_FRAME;
    this.scanner = options.scanner ?? jsScanner;
    this.room = options.room;
  }

  /** A reassembly buffer's size: `ahead` (doubling) within `room`, at least `need`, at most the frame. */
  private sized(need: number, ahead: number, from: number): number {
    const room = this.room;
    const size = room === undefined ? ahead : Math.max(need, Math.min(ahead, from + room()));
    return this.want > 0 ? Math.min(this.want, size) : size;
  }

  /** Largest accepted value of the length field. */
  get limit(): number {
    return this.maxFrameLength;
  }

  /**
   * Changes the size limit for the frames not yet scanned, e.g. a node keeps
   * it small until the handshake is done, then raises it. Takes effect
   * immediately, even for frames later in the chunk being decoded (a frame
   * refused under the old limit is not reported if the new one admits it).
   */
  set limit(n: number) {
    this.maxFrameLength = n;
  }

  /** The fatal error that stopped this decoder, if any. */
  get failed(): ProtocolError | undefined {
    return this.failure;
  }

  /** Bytes held back waiting for the rest of a frame. */
  get buffered(): number {
    return this.partLen;
  }

  /** Memory held for the frame being reassembled (its buffer's size, at least `buffered`); 0 when none. */
  get held(): number {
    return this.part === undefined ? 0 : this.part.length;
  }

  /**
   * Decodes `chunk`, calling `onFrame` for each complete frame and `onError`
   * for each error (after a fatal one, nothing more). Never throws for bad
   * input. Frames are only valid until the caller releases `chunk`.
   */
  push(chunk: Uint8Array, onFrame: FrameHandler, onError: (e: ProtocolError) => void): void {
    if (this.failure) return;
    const out = spareScan ?? new Uint32Array(SCAN_WORDS);
    spareScan = undefined;
    this.out = out;
    try {
      this.decode(chunk, onFrame, onError);
    } finally {
      this.out = NO_SCAN;
      spareScan = out;
    }
  }

  private decode(chunk: Uint8Array, onFrame: FrameHandler, onError: (e: ProtocolError) => void): void {
    let pos = 0;
    const n = chunk.length;
    if (this.skip > 0) {
      const k = Math.min(this.skip, n);
      this.skip -= k;
      pos = k;
      if (this.skip > 0) return;
    }
    if (this.partLen > 0) {
      pos = this.continuePart(chunk, pos, onFrame, onError);
      if (pos < 0) return;
    }
    const out = this.out;
    while (pos < n) {
      const count = this.scanner.scan(chunk, pos, n, this.maxFrameLength, out);
      for (let i = 0; i < count; i++) {
        const o = SCAN_META + i * SCAN_SLOTS;
        const s = out[o]!;
        onFrame(new Frame(chunk, s, s + out[o + 1]!), out[o + 2]! >= SCAN_REPEAT);
      }
      const stop = out[1]!;
      const err = out[2]!;
      if (err !== 0) {
        if (err === E_TOO_LARGE) {
          const size = out[3]! + 4;
          // A frame handled just above (a HELLO) may have raised the limit: scan again under it.
          if (size - 4 <= this.maxFrameLength) {
            pos = stop;
            continue;
          }
          onError(new ProtocolError('MB_ERR_FRAME_TOO_LARGE', `${size - 4} bytes, limit ${this.maxFrameLength}`));
          const k = Math.min(size, n - stop);
          pos = stop + k;
          if (k < size) {
            this.skip = size - k;
            return;
          }
          continue;
        }
        this.fail(new ProtocolError(codeFromNumber(err), `at stream offset ${stop}`), onError);
        return;
      }
      if (count === BATCH && stop < n) {
        pos = stop;
        continue;
      }
      // Incomplete frame at `stop`: keep its bytes for the next chunk.
      if (stop < n) this.startPart(chunk, stop, n, out[3]!);
      return;
    }
  }

  /**
   * Declares the end of the stream. Reports MB_ERR_TRUNCATED when a frame
   * was left incomplete.
   */
  end(onError: (e: ProtocolError) => void): void {
    if (this.failure) return;
    if (this.partLen > 0 || this.skip > 0) {
      this.fail(new ProtocolError('MB_ERR_TRUNCATED', `${this.partLen || this.skip} bytes of an incomplete frame`), onError);
    }
  }

  /** Drops any partial frame and error state, e.g. after a reconnect. */
  reset(): void {
    this.part = undefined;
    this.partLen = 0;
    this.want = 0;
    this.skip = 0;
    this.failure = undefined;
  }

  private fail(e: ProtocolError, onError: (e: ProtocolError) => void): void {
    this.failure = e;
    this.part = undefined;
    this.partLen = 0;
    this.want = 0;
    onError(e);
  }

  /** Starts reassembly of the frame at `chunk[from, to)`, whose length field is `length` or 0 if unknown. */
  private startPart(chunk: Uint8Array, from: number, to: number, length: number): void {
    // Until the header is complete the frame size is unknown: hold a header-sized buffer.
    this.want = length > 0 ? length + 4 : 0;
    this.part = new Uint8Array(this.want > 0 ? this.sized(to - from, Math.max(PART_MIN, 2 * (to - from)), 0) : FIXED_SIZE);
    this.part.set(chunk.subarray(from, to), 0);
    this.partLen = to - from;
  }

  /** Room for `n` more bytes of the frame being reassembled, growing by doubling up to its size. */
  private reserve(n: number): Uint8Array {
    const part = this.part!;
    const need = this.partLen + n;
    if (need <= part.length) return part;
    const grown = new Uint8Array(this.sized(need, Math.max(need, 2 * part.length, PART_MIN), part.length));
    grown.set(part.subarray(0, this.partLen), 0);
    this.part = grown;
    return grown;
  }

  /** Continues reassembly; returns the position after the consumed bytes, or -1 to stop. */
  private continuePart(
    chunk: Uint8Array,
    pos: number,
    onFrame: (f: Frame) => void,
    onError: (e: ProtocolError) => void,
  ): number {
    const part = this.part!;
    if (this.want === 0) {
      // Header stage: complete the header, then validate it before sizing the buffer.
      const k = Math.min(FIXED_SIZE - this.partLen, chunk.length - pos);
      part.set(chunk.subarray(pos, pos + k), this.partLen);
      this.partLen += k;
      pos += k;
      const count = this.scanner.scan(part, 0, this.partLen, this.maxFrameLength, this.out);
      const err = this.out[2]!;
      if (count === 1) {
        // A header-only frame (no topic, extension or payload).
        this.part = undefined;
        this.partLen = 0;
        onFrame(new Frame(part, 0, FIXED_SIZE));
        return pos;
      }
      if (err === E_TOO_LARGE) {
        const size = this.out[3]! + 4;
        onError(new ProtocolError('MB_ERR_FRAME_TOO_LARGE', `${size - 4} bytes, limit ${this.maxFrameLength}`));
        this.part = undefined;
        this.partLen = 0;
        this.skip = size - FIXED_SIZE;
        const k2 = Math.min(this.skip, chunk.length - pos);
        this.skip -= k2;
        return this.skip > 0 ? -1 : pos + k2;
      }
      if (err !== 0) {
        this.fail(new ProtocolError(codeFromNumber(err), 'in a frame split across chunks'), onError);
        return -1;
      }
      if (this.partLen < FIXED_SIZE) return -1;
      // Do not allocate what the length field claims (up to 4 GiB) before the bytes arrive.
      this.want = this.out[3]! + 4;
    }
    const k = Math.min(this.want - this.partLen, chunk.length - pos);
    const buf = this.reserve(k);
    buf.set(chunk.subarray(pos, pos + k), this.partLen);
    this.partLen += k;
    pos += k;
    if (this.partLen < this.want) return -1;
    const size = this.want;
    this.part = undefined;
    this.partLen = 0;
    this.want = 0;
    onFrame(new Frame(buf, 0, size));
    return pos;
  }
}

/**
 * Decodes a complete byte string into frames. Throws the first
 * ProtocolError; used for test vectors and tools, not on the hot path.
 */
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

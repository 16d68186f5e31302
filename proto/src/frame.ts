import { OFF, FIXED_SIZE, FrameTypeName, Flags, type FrameType } from './constants.js';
import { hex64, readU16, readU32, readU64 } from './bytes.js';
import { utf8Decode } from './utf8.js';
import { ProtocolError } from './errors.js';
import { decodeExtension, type Extension } from './extension.js';

/**
 * A decoded frame: a view over `buf[start, end)`, the bytes as received.
 * Fields are read from the header on demand and nothing is copied, so a node
 * can forward `bytes` to every subscriber unchanged.
 */
export class Frame {
  private view: Uint8Array | undefined;

  constructor(
    /** The buffer holding the frame (the received chunk, or a reassembly buffer). */
    readonly buf: Uint8Array,
    /** Offset of the length prefix in `buf`. */
    readonly start: number,
    /** Offset one past the last byte of the frame. */
    readonly end: number,
  ) {}

  get type(): FrameType {
    return this.buf[this.start + OFF.TYPE] as FrameType;
  }
  get typeName(): string {
    return FrameTypeName[this.type] ?? `0x${this.type.toString(16)}`;
  }
  get flags(): number {
    return readU16(this.buf, this.start + OFF.FLAGS);
  }
  get traced(): boolean {
    return (this.flags & Flags.TRACE) !== 0;
  }
  get ackRequested(): boolean {
    return (this.flags & Flags.ACK_REQUESTED) !== 0;
  }
  get hops(): number {
    return this.buf[this.start + OFF.HOPS]!;
  }
  get maxHops(): number {
    return this.buf[this.start + OFF.MAX_HOPS]!;
  }
  get topicHash(): number {
    return readU32(this.buf, this.start + OFF.TOPIC_HASH);
  }
  /** The 8-byte origin id as 16 hex digits. */
  get origin(): string {
    return hex64(this.buf, this.start + OFF.ORIGIN);
  }
  get seq(): number {
    return readU64(this.buf, this.start + OFF.SEQ);
  }
  get timestamp(): number {
    return readU64(this.buf, this.start + OFF.TIMESTAMP);
  }
  get correlation(): number {
    return readU32(this.buf, this.start + OFF.CORRELATION);
  }
  /** Subscription id of a queue-group delivery; 0 for every other frame. */
  get sid(): number {
    return readU32(this.buf, this.start + OFF.SID);
  }
  get topicLen(): number {
    return readU16(this.buf, this.start + OFF.TOPIC_LEN);
  }
  get extLen(): number {
    return readU16(this.buf, this.start + OFF.EXT_LEN);
  }
  get payloadLen(): number {
    return readU32(this.buf, this.start + OFF.PAYLOAD_LEN);
  }
  /** Total size in bytes, prefix included. */
  get size(): number {
    return this.end - this.start;
  }
  /** Offset of the topic bytes in `buf`. */
  get topicStart(): number {
    return this.start + FIXED_SIZE;
  }
  /** The topic bytes, a view. */
  get topicBytes(): Uint8Array {
    const s = this.start + FIXED_SIZE;
    return this.buf.subarray(s, s + this.topicLen);
  }
  /** The topic as a string; a ProtocolError MB_ERR_BAD_TOPIC when it is not UTF-8. */
  get topic(): string {
    const s = this.start + FIXED_SIZE;
    const t = utf8Decode(this.buf, s, s + this.topicLen);
    if (t === undefined) throw new ProtocolError('MB_ERR_BAD_TOPIC', 'topic is not valid UTF-8');
    return t;
  }
  /** The extension block bytes, a view (empty when absent). */
  get extBytes(): Uint8Array {
    const s = this.start + FIXED_SIZE + this.topicLen;
    return this.buf.subarray(s, s + this.extLen);
  }
  /** The decoded extension block; a ProtocolError MB_ERR_BAD_EXTENSION when malformed. */
  get ext(): Extension | undefined {
    const len = this.extLen;
    return len === 0 ? undefined : decodeExtension(this.extBytes);
  }
  /** The payload, a view into `buf` (not a copy). */
  get payload(): Uint8Array {
    return this.buf.subarray(this.end - this.payloadLen, this.end);
  }
  /**
   * The whole frame as received, a view: what a node forwards. Made once and
   * kept: a node hands the same view to every receiver of a fan-out.
   */
  get bytes(): Uint8Array {
    return (this.view ??= this.buf.subarray(this.start, this.end));
  }
}

import { OFF, applyCrcDelta, byteDelta, patchBytes8, patchU32, readU32, readU64, type Frame } from '@meshbus/proto';

/** Stamps between two reads of the clock at most (besides one read per event-loop turn). */
const CLOCK_EVERY = 256;
const SEQ_LO = OFF.SEQ + 4;

/**
 * Gives events their mesh identity at ingress: the node's id as origin, a
 * node-wide sequence, a timestamp when the client left it 0, sid 0; the
 * header CRC updated for the changed bytes only (proto header-patch.ts: the
 * frame's CRC must be a checked one).
 *
 * The common case is a *fresh* header: the client left origin, sequence,
 * timestamp and sid 0 (the SDK does). Then every byte the stamp writes goes
 * over a zero, and the CRC delta of each field is a function of the new
 * value alone: the node's origin is a constant, the sequence's high word and
 * the top three bytes of its low word change every 2^32 / every 256 events,
 * the timestamp once per millisecond. Those deltas are kept here, so a fresh
 * stamp costs one table lookup (the sequence's last byte) where a full patch
 * took 24, plus the byte writes.
 *
 * The clock: `Date.now()` costs ~40 ns on this machine, as much as the rest
 * of the stamp; it is read once per event-loop turn (a microtask marks it
 * stale when the turn ends) and at least every CLOCK_EVERY stamps, so a
 * stamped timestamp is the time the node read the event's input chunk, at
 * most one turn late (bench/README.md, "Profile").
 */
export class EventStamp {
  /** CRC delta of this node's origin written over a zero origin. */
  private readonly originDelta: number;
  /** The high word of the sequence whose delta over zero is `hiDelta`. */
  private hi = -1;
  private hiDelta = 0;
  /** The low word's top 24 bits (`lo >>> 8`) whose delta over zero is `midDelta`. */
  private mid = -1;
  private midDelta = 0;
  /** The time whose 8 bytes' delta over zero is `nowDelta`. */
  private deltaAt = -1;
  private nowDelta = 0;
  /** The clock as last read, and stamps left before it is read again (-1: read it at the next stamp). */
  private now = 0;
  private clockLeft = -1;
  private readonly stale = (): void => {
    this.clockLeft = -1;
  };

  /**
   * `origin`: this node's id, 8 bytes. `seq`: the last sequence used; each
   * stamp takes the next (see MeshNode: it starts from the clock in µs).
   */
  constructor(
    private readonly origin: Uint8Array,
    public seq: number,
  ) {
    this.originDelta = patchBytes8(new Uint8Array(64), 0, OFF.ORIGIN, origin);
  }

  /** Stamps the frame in place. */
  stamp(f: Frame): void {
    const b = f.buf;
    const s = f.start;
    const seq = ++this.seq;
    const lo = seq >>> 0;
    const hi = (seq - lo) / 0x100000000;
    const now = this.clock();
    if (fresh(b, s)) {
      if (hi !== this.hi) this.newHigh(hi);
      const mid = lo >>> 8;
      if (mid !== this.mid) {
        this.mid = mid;
        this.midDelta = byteDelta(SEQ_LO, mid >>> 16) ^ byteDelta(SEQ_LO + 1, (mid >>> 8) & 0xff) ^ byteDelta(SEQ_LO + 2, mid & 0xff);
      }
      if (now !== this.deltaAt) {
        this.deltaAt = now;
        this.nowDelta = bytesDelta(OFF.TIMESTAMP, Math.floor(now / 0x100000000)) ^ bytesDelta(OFF.TIMESTAMP + 4, now >>> 0);
      }
      const src = this.origin;
      const o = s + OFF.ORIGIN;
      for (let k = 0; k < 8; k++) b[o + k] = src[k]!;
      writeWord(b, s + OFF.SEQ, hi);
      writeWord(b, s + SEQ_LO, lo);
      writeWord(b, s + OFF.TIMESTAMP, Math.floor(now / 0x100000000));
      writeWord(b, s + OFF.TIMESTAMP + 4, now >>> 0);
      applyCrcDelta(b, s, this.originDelta ^ this.hiDelta ^ this.midDelta ^ this.nowDelta ^ byteDelta(SEQ_LO + 3, lo & 0xff));
      return;
    }
    // Anything else (a client that set some of these fields): each field patched over what it held.
    const o = s + OFF.ORIGIN;
    let d: number;
    if (readU32(b, o) === 0 && readU32(b, o + 4) === 0) {
      const src = this.origin;
      for (let k = 0; k < 8; k++) b[o + k] = src[k]!;
      d = this.originDelta;
    } else d = patchBytes8(b, s, OFF.ORIGIN, this.origin);
    d ^= patchU32(b, s, OFF.SEQ, hi) ^ patchU32(b, s, SEQ_LO, lo);
    if (readU64(b, s + OFF.TIMESTAMP) === 0) d ^= patchU32(b, s, OFF.TIMESTAMP, Math.floor(now / 0x100000000)) ^ patchU32(b, s, OFF.TIMESTAMP + 4, now >>> 0);
    // Only nodes set sid, on queue-group deliveries.
    d ^= patchU32(b, s, OFF.SID, 0);
    applyCrcDelta(b, s, d);
  }

  /** The time for this stamp, ms: read once per event-loop turn and every CLOCK_EVERY stamps. */
  private clock(): number {
    if (this.clockLeft-- > 0) return this.now;
    if (this.clockLeft === -2) queueMicrotask(this.stale);
    this.clockLeft = CLOCK_EVERY - 1;
    return (this.now = Date.now());
  }

  private newHigh(hi: number): void {
    this.hi = hi;
    this.hiDelta = bytesDelta(OFF.SEQ, hi);
  }
}

/** Origin, sequence, timestamp and sid all 0 (a header as the SDK sends it). */
function fresh(b: Uint8Array, s: number): boolean {
  const o = s + OFF.ORIGIN;
  // Origin, sequence and timestamp are 24 consecutive bytes.
  let x = b[s + OFF.SID]! | b[s + OFF.SID + 1]! | b[s + OFF.SID + 2]! | b[s + OFF.SID + 3]!;
  for (let k = 0; k < 24; k++) x |= b[o + k]!;
  return x === 0;
}

/** CRC delta of the big-endian u32 `v` written over four zero bytes at header position `pos`. */
function bytesDelta(pos: number, v: number): number {
  return byteDelta(pos, v >>> 24) ^ byteDelta(pos + 1, (v >>> 16) & 0xff) ^ byteDelta(pos + 2, (v >>> 8) & 0xff) ^ byteDelta(pos + 3, v & 0xff);
}

function writeWord(b: Uint8Array, i: number, v: number): void {
  b[i] = v >>> 24;
  b[i + 1] = v >>> 16;
  b[i + 2] = v >>> 8;
  b[i + 3] = v;
}

import { OFF, applyCrcDelta, byteDelta, patchBytes8, patchU32, readU32, readU64, resealHeader, writeU64, type Frame } from '@meshbus/proto';

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
 * took 24, plus six word writes.
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
  /** The origin as two big-endian words. */
  private readonly originHi: number;
  private readonly originLo: number;
  /**
   * A DataView of the array the last stamped frame lies in (`dvOf`): frames
   * of one input chunk share it. Let go at the end of the event-loop turn
   * (`stale`): kept, it held the last chunk stamped, up to one largest frame
   * (16 MiB with --max-payload 16 MiB), for as long as the node stayed idle.
   */
  private dv: DataView | undefined;
  private dvOf: Uint8Array | undefined;
  private readonly stale = (): void => {
    this.clockLeft = -1;
    this.dv = undefined;
    this.dvOf = undefined;
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
    this.originHi = readU32(origin, 0);
    this.originLo = readU32(origin, 4);
  }

  /** Stamps the frame in place. */
  stamp(f: Frame): void {
    const b = f.buf;
    const s = f.start;
    const seq = ++this.seq;
    const lo = seq >>> 0;
    const hi = (seq - lo) / 0x100000000;
    const now = this.clock();
    // Word reads and writes through a DataView of the input chunk (made once per chunk): a
    // third of the cost of the same bytes one by one (in-process 57 -> 23 ns a stamp).
    const dv = b === this.dvOf && this.dv !== undefined ? this.dv : this.viewOf(b);
    const o = s + OFF.ORIGIN;
    // Origin, sequence and timestamp are 24 consecutive bytes; then sid.
    if ((dv.getUint32(o) | dv.getUint32(o + 4) | dv.getUint32(o + 8) | dv.getUint32(o + 12) | dv.getUint32(o + 16) | dv.getUint32(o + 20) | dv.getUint32(s + OFF.SID)) === 0) {
      if (hi !== this.hi) this.newHigh(hi);
      const mid = lo >>> 8;
      if (mid !== this.mid) {
        this.mid = mid;
        this.midDelta = byteDelta(SEQ_LO, mid >>> 16) ^ byteDelta(SEQ_LO + 1, (mid >>> 8) & 0xff) ^ byteDelta(SEQ_LO + 2, mid & 0xff);
      }
      const nowHi = Math.floor(now / 0x100000000);
      if (now !== this.deltaAt) {
        this.deltaAt = now;
        this.nowDelta = wordDelta(OFF.TIMESTAMP, nowHi) ^ wordDelta(OFF.TIMESTAMP + 4, now >>> 0);
      }
      dv.setUint32(o, this.originHi);
      dv.setUint32(o + 4, this.originLo);
      dv.setUint32(o + 8, hi);
      dv.setUint32(o + 12, lo);
      dv.setUint32(o + 16, nowHi);
      dv.setUint32(o + 20, now >>> 0);
      const crc = s + OFF.CRC;
      dv.setUint32(crc, dv.getUint32(crc) ^ this.originDelta ^ this.hiDelta ^ this.midDelta ^ this.nowDelta ^ byteDelta(SEQ_LO + 3, lo & 0xff));
      return;
    }
    // Anything else (a client that set some of these fields): each field patched over what it held.
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

  /**
   * Gives an event stamped earlier (maybe by another node sharing the store:
   * a delayed publish) this node's origin and the next sequence, leaving
   * its timestamp; the CRC resealed.
   */
  restamp(f: Frame): void {
    f.buf.set(this.origin, f.start + OFF.ORIGIN);
    writeU64(f.buf, f.start + OFF.SEQ, ++this.seq);
    resealHeader(f.buf, f.start);
  }

  /** The time for this stamp, ms: read once per event-loop turn and every CLOCK_EVERY stamps. */
  private clock(): number {
    if (this.clockLeft-- > 0) return this.now;
    if (this.clockLeft === -2) queueMicrotask(this.stale);
    this.clockLeft = CLOCK_EVERY - 1;
    return (this.now = Date.now());
  }

  private viewOf(b: Uint8Array): DataView {
    this.dvOf = b;
    return (this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength));
  }

  private newHigh(hi: number): void {
    this.hi = hi;
    this.hiDelta = wordDelta(OFF.SEQ, hi);
  }
}

/** CRC delta of the big-endian u32 `v` written over four zero bytes at header position `pos`. */
function wordDelta(pos: number, v: number): number {
  return byteDelta(pos, v >>> 24) ^ byteDelta(pos + 1, (v >>> 16) & 0xff) ^ byteDelta(pos + 2, (v >>> 8) & 0xff) ^ byteDelta(pos + 3, v & 0xff);
}

import { OFF, applyCrcDelta, patchBytes8, patchU32, readU32, readU64, type Frame } from '@meshbus/proto';

/**
 * Gives events their mesh identity at ingress: the node's id as origin, a
 * node-wide sequence, a timestamp when the client left it 0, sid 0; the
 * header CRC updated for the changed bytes only (proto header-patch.ts: the
 * frame's CRC must be a checked one). A client leaves origin and the high
 * word of the sequence 0 (the SDK does), and the node's sequence keeps its
 * high word for hours: the CRC deltas of those bytes are per-node constants,
 * kept here, so the common stamp costs 8 table lookups (low sequence word
 * and sid) instead of 24.
 */
export class EventStamp {
  /** CRC delta of this node's origin written over a zero origin. */
  private readonly originDelta: number;
  /** The high word of the sequence whose delta over zero is `hiDelta`. */
  private hi = -1;
  private hiDelta = 0;
  private readonly scratch = new Uint8Array(64);

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
    const o = s + OFF.ORIGIN;
    let d: number;
    if (readU32(b, o) === 0 && readU32(b, o + 4) === 0) {
      const src = this.origin;
      for (let k = 0; k < 8; k++) b[o + k] = src[k]!;
      d = this.originDelta;
    } else d = patchBytes8(b, s, OFF.ORIGIN, this.origin);
    const seq = ++this.seq;
    const hi = Math.floor(seq / 0x100000000);
    if (hi === this.hi && readU32(b, s + OFF.SEQ) === 0) {
      const q = s + OFF.SEQ;
      b[q] = hi >>> 24;
      b[q + 1] = hi >>> 16;
      b[q + 2] = hi >>> 8;
      b[q + 3] = hi;
      d ^= this.hiDelta;
    } else {
      d ^= patchU32(b, s, OFF.SEQ, hi);
      if (hi !== this.hi) {
        this.hi = hi;
        this.scratch.fill(0);
        this.hiDelta = patchU32(this.scratch, 0, OFF.SEQ, hi);
      }
    }
    d ^= patchU32(b, s, OFF.SEQ + 4, seq >>> 0);
    if (readU64(b, s + OFF.TIMESTAMP) === 0) {
      const now = Date.now();
      d ^= patchU32(b, s, OFF.TIMESTAMP, Math.floor(now / 0x100000000)) ^ patchU32(b, s, OFF.TIMESTAMP + 4, now >>> 0);
    }
    // Only nodes set sid, on queue-group deliveries.
    d ^= patchU32(b, s, OFF.SID, 0);
    applyCrcDelta(b, s, d);
  }
}

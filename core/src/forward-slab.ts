import { FIXED_SIZE, OFF, applyCrcDelta, patchU32, patchU8, type Frame } from '@meshbus/proto';

/** Bytes of one slab. A full slab is replaced, never reused: what was handed out stays valid. */
const SLAB_BYTES = 64 * 1024;
/** Frames up to this size are copied whole into the slab; larger ones only their header (the rest goes out uncopied). */
const COPY_MAX = 1024;

/**
 * Builds the bytes of a forwarded event (a peer link's copy of an event:
 * hops raised, sid set, header resealed) in one link's slab, instead of a
 * fresh 64-byte header per event plus a view of the rest.
 *
 * - A frame of at most 1 KiB is copied whole right after the previous one,
 *   so the events one input chunk forwards to the link lie back to back:
 *   TickBatch hands them to the socket as one view (one write, nothing
 *   copied again), where a header + tail pair per event meant a
 *   concatenation of every pair at flush.
 * - A larger frame gets only its header from the slab; the topic,
 *   extension and payload go out as a view of the input, uncopied.
 *
 * Memory: one 64 KiB slab per link that forwards (made on first use); a
 * view keeps its slab alive while a socket holds it, and TcpTransport copies
 * small views once the socket is backed up, so a slow peer pins no slabs.
 * The CRC is updated for the changed bytes only (header-patch.ts): the
 * frame's header must be a checked one (decoded, stamped or encoded here).
 */
export class ForwardSlab {
  private slab: Buffer | undefined;
  private used = 0;

  /**
   * The forwarded frame as `[head, tail]`: `tail` is undefined when `head`
   * holds the whole frame. Both are valid until the caller's transport sent them.
   */
  forward(f: Frame, sid: number, hops: number): [Uint8Array, Uint8Array | undefined] {
    const size = f.end - f.start;
    const whole = size <= COPY_MAX;
    const n = whole ? size : FIXED_SIZE;
    let slab = this.slab;
    if (slab === undefined || this.used + n > slab.length) {
      slab = this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.used = 0;
    }
    const at = this.used;
    slab.set(f.buf.subarray(f.start, f.start + n), at);
    this.used = at + n;
    applyCrcDelta(slab, at, patchU8(slab, at, OFF.HOPS, hops) ^ patchU32(slab, at, OFF.SID, sid));
    const head = slab.subarray(at, at + n);
    return [head, whole ? undefined : f.buf.subarray(f.start + FIXED_SIZE, f.end)];
  }
}

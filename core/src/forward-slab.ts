import { FIXED_SIZE, OFF, applyCrcDelta, patchU32, patchU8, type Frame } from '@meshbus/proto';
import type { OutboundQueue } from './outbound-queue.js';

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
   * Builds the forwarded frame and queues it on `out` (hops raised to
   * `hops`, sid set to `sid`): a whole copy goes as a range of the slab
   * (OutboundQueue.sendRange: no view made while it goes straight to the
   * wire), a large frame as its header from the slab and a view of the rest.
   * The copy reads the input through a plain Uint8Array view: a Buffer's
   * `subarray` (a FastBuffer, found through the species constructor) cost
   * twice as much, and with the returned head view it was ~6 % of a node
   * forwarding 16 B events (bench/README.md, "Profile"). Returns what
   * `out` returned (false: dropped, or the peer is a slow consumer).
   */
  forward(f: Frame, sid: number, hops: number, out: OutboundQueue): boolean {
    const size = f.end - f.start;
    const whole = size <= COPY_MAX;
    const n = whole ? size : FIXED_SIZE;
    let slab = this.slab;
    if (slab === undefined || this.used + n > slab.length) {
      slab = this.slab = Buffer.allocUnsafe(SLAB_BYTES);
      this.used = 0;
    }
    const at = this.used;
    const src = f.buf;
    slab.set(new Uint8Array(src.buffer, src.byteOffset + f.start, n), at);
    this.used = at + n;
    applyCrcDelta(slab, at, patchU8(slab, at, OFF.HOPS, hops) ^ patchU32(slab, at, OFF.SID, sid));
    if (whole) return out.sendRange(slab, at, at + n);
    return out.send(slab.subarray(at, at + n), src.subarray(f.start + FIXED_SIZE, f.end));
  }
}

/**
 * Raises the hop count of `f` by one in its own bytes (the CRC updated for
 * that byte, header-patch.ts), as a link would in its copy. Used by
 * MeshNode.deliver for an event whose receivers are all links: each link
 * then sends the bytes as they are (PeerLink.forwardRaised), instead of
 * each making a copy here. The bytes on the wire are the same (SPEC §10.3:
 * hops raised by the sender, sid 0, which the stamp set). Returns false, leaving
 * it untouched, when that would pass its maxHops (each link then drops it
 * and counts that, as before).
 */
export function raiseHops(f: Frame): boolean {
  const hops = f.hops + 1;
  if (hops > f.maxHops) return false;
  applyCrcDelta(f.buf, f.start, patchU8(f.buf, f.start, OFF.HOPS, hops));
  return true;
}

import { describe, expect, it } from 'vitest';
import { Frame, FrameType, encodeFrame, readU32 } from '@meshbus/proto';
import { OriginOrder } from '../src/origin-order.js';
import type { PeerLink } from '../src/peer-link.js';

const A = '00000000000000a1';
const B = '00000000000000b2';

/** A stand-in for the link from node `peer` (only what admit reads). */
function linkFrom(peer: string): PeerLink {
  const words = [parseInt(peer.slice(0, 8), 16), parseInt(peer.slice(8), 16)];
  return {
    peer: { id: peer },
    stampedByPeer: (f: Frame) => readU32(f.buf, f.start + 16) === words[0] && readU32(f.buf, f.start + 20) === words[1],
  } as unknown as PeerLink;
}

function event(origin: string, seq: number): Frame {
  const b = encodeFrame({ type: FrameType.PUB, topic: 'a.b', payload: new Uint8Array(1), origin: Buffer.from(origin, 'hex'), seq });
  return new Frame(b, 0, b.length);
}

describe('OriginOrder', () => {
  it('admits each origin in order, refuses an older sequence, keeps origins apart, and forgets one on request', () => {
    const o = new OriginOrder();
    const la = linkFrom(A);
    const now = Date.now() * 1000;
    expect(o.admit(la, event(A, now + 2))).toBe(true);
    expect(o.admit(la, event(A, now + 2))).toBe(true); // the same sequence passes (a plain and a queue copy)
    expect(o.admit(la, event(A, now + 1))).toBe(false);
    // Relayed over A's link, stamped by B: B's own order.
    expect(o.admit(la, event(B, now - 5))).toBe(true);
    expect(o.admit(la, event(A, now + 1))).toBe(false);
    expect(o.admit(la, event(B, now - 6))).toBe(false);
    expect(o.admit(la, event(B, now - 4))).toBe(true);
    o.forget(B);
    expect(o.admit(la, event(B, now - 100))).toBe(true);
    expect(o.admit(la, event(A, now + 1))).toBe(false);
  });

  it('admits a sequence far ahead of the clock without remembering it, also when the clock was read long before', () => {
    const o = new OriginOrder();
    const la = linkFrom(A);
    const now = Date.now() * 1000;
    expect(o.admit(la, event(A, now))).toBe(true);
    // Two hours ahead: admitted, not remembered, so the next ordinary event still passes.
    expect(o.admit(la, event(A, now + 2 * 3600e6))).toBe(true);
    expect(o.admit(la, event(A, now + 10))).toBe(true);
    expect(o.admit(la, event(A, now + 5))).toBe(false);
  });
});

import type { Socket } from 'node:net';
import { FrameType, OFF, readU32 } from '@meshbus/proto';

/**
 * Events (PUB and REQ frames) among whole frames laid back to back in
 * `chunks`, the first starting at stream offset `start`, that end past
 * stream offset `taken`: what a socket closed with these bytes unsent lost.
 * Runs at a close only (the chunks are joined when there are several), so
 * a write path pays nothing per event for it.
 */
export function eventsPast(chunks: readonly Uint8Array[], start: number, taken: number): number {
  if (chunks.length === 0) return 0;
  const b = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  let lost = 0;
  for (let at = 0; at + 8 <= b.length; ) {
    const next = at + 4 + readU32(b, at);
    if (next <= at) break;
    const type = b[at + OFF.TYPE];
    if (start + next > taken && (type === FrameType.PUB || type === FrameType.REQ)) lost++;
    at = next;
  }
  return lost;
}

/** Events in whole frames `buf[start, end)` (all of them; a frame's first chunk counts it when the rest is another chunk). */
export function eventsIn(buf: Uint8Array, start = 0, end = buf.length): number {
  return eventsPast([buf.subarray(start, end)], 0, -1);
}

/** Largest plaintext of one TLS record (RFC 8446 5.1, Node's default max send fragment). */
const TLS_RECORD = 16_384;

/** The Node internals read at a destroy: the write in progress, and libuv's queue of the TCP handle (under the TLS one over TLS). */
type Internals = Socket & {
  encrypted?: boolean;
  _writableState?: { writelen?: unknown };
  _handle?: { writeQueueSize?: unknown; _parent?: { writeQueueSize?: unknown } | null } | null;
};

/**
 * Bytes of the stream `socket` holds that the system has not taken: what
 * waits behind the write in progress, and what libuv still holds of that
 * write. Over TLS libuv holds ciphertext (the TCP handle's queue, under the
 * TLS one) and the other end reads whole records only: of the write's
 * records (TLS_RECORD bytes of plaintext each, the same overhead each: the
 * TLS handle's queue less the plaintext, per record) those the system took
 * whole are taken. Without those fields (another runtime), or when they do
 * not add up, the whole write counts as not taken (an over-count of its
 * events, never an under-count). Before, a TLS socket's write always
 * counted whole: the events of the records a slow reader had taken were
 * counted lost and received both.
 */
export function untakenBytes(socket: Socket): number {
  const s = socket as Internals;
  const inFlight = s._writableState?.writelen;
  if (typeof inFlight !== 'number') return s.writableLength;
  return s.writableLength - inFlight + leftOfWrite(s, inFlight);
}

/** Plaintext bytes of the write in progress (`inFlight` bytes) the system has not taken. */
function leftOfWrite(s: Internals, inFlight: number): number {
  const left = s._handle?.writeQueueSize;
  if (s.encrypted !== true) return typeof left === 'number' && left <= inFlight ? left : inFlight;
  const cipherLeft = s._handle?._parent?.writeQueueSize;
  if (typeof left !== 'number' || typeof cipherLeft !== 'number' || left < inFlight || cipherLeft > left) return inFlight;
  if (cipherLeft === 0) return 0;
  const records = Math.ceil(inFlight / TLS_RECORD);
  const perRecord = TLS_RECORD + (left - inFlight) / records;
  const whole = Math.floor((left - cipherLeft) / perRecord);
  return inFlight - Math.min(inFlight, whole * TLS_RECORD);
}

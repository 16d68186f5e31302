/**
 * Shared by the native test files: the implementations under test and small
 * frame builders on top of @meshbus/proto (the reference codec).
 */
import { FIXED_SIZE, FrameType, OFF, resealHeader, topicHash, writeHeader, type HeaderFields } from '@meshbus/proto';
import { jsOps, nativeOps, nativeUnavailableReason, type ByteOps } from '../src/index.js';
import { concat } from '../../proto/test/helpers.js';

export { concat };

/** Set on CI (which has a compiler): a missing addon is then a failure, not a fallback. */
export const REQUIRE_NATIVE = process.env['MESHBUS_REQUIRE_NATIVE'] === '1';

/**
 * The addon for a test that checks it: without it the test is reported as
 * skipped (with the reason), or fails under MESHBUS_REQUIRE_NATIVE=1.
 */
export function needNative(ctx: { skip(note?: string): never }): ByteOps {
  if (nativeOps) return nativeOps;
  const why = `native addon unavailable (${nativeUnavailableReason ?? 'not built'})`;
  if (REQUIRE_NATIVE) throw new Error(`MESHBUS_REQUIRE_NATIVE=1 but the ${why}`);
  return ctx.skip(why);
}

/** Every implementation available here; the JS one always. */
export const impls: readonly ByteOps[] = nativeOps ? [jsOps, nativeOps] : [jsOps];

/** Appended to the titles of tests that need the addon when it is missing. */
export const NATIVE_NOTE = nativeOps ? '' : ' [native addon NOT built: JS side only]';

const enc = new TextEncoder();

export interface FrameOpts extends Partial<HeaderFields> {
  topic?: string | Uint8Array;
  ext?: Uint8Array;
  payload?: Uint8Array;
}

/** One complete, valid frame. */
export function frame(o: FrameOpts = {}): Uint8Array {
  const topic = typeof o.topic === 'string' ? enc.encode(o.topic) : (o.topic ?? enc.encode('a.b'));
  const ext = o.ext ?? new Uint8Array(0);
  const payload = o.payload ?? new Uint8Array(0);
  const buf = new Uint8Array(FIXED_SIZE + topic.length + ext.length + payload.length);
  writeHeader(buf, 0, {
    type: FrameType.PUB,
    topicHash: topicHash(topic),
    ...o,
    topicLen: o.topicLen ?? topic.length,
    extLen: o.extLen ?? ext.length,
    payloadLen: o.payloadLen ?? payload.length,
  });
  buf.set(topic, FIXED_SIZE);
  buf.set(ext, FIXED_SIZE + topic.length);
  buf.set(payload, FIXED_SIZE + topic.length + ext.length);
  return buf;
}


/** Patches header bytes at `off` and recomputes the CRC, so only the patched rule fails. */
export function patch(buf: Uint8Array, off: number, at: number, bytes: readonly number[]): Uint8Array {
  for (let i = 0; i < bytes.length; i++) buf[off + at + i] = bytes[i]!;
  resealHeader(buf, off);
  return buf;
}

export function writeU32BE(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/** A copy of `bytes` placed at byte offset `lead` of a larger ArrayBuffer (a view with byteOffset != 0). */
export function placed(bytes: Uint8Array, lead: number, tail = 0): Uint8Array {
  const ab = new ArrayBuffer(lead + bytes.length + tail);
  new Uint8Array(ab).fill(0xa5);
  const view = new Uint8Array(ab, lead, bytes.length);
  view.set(bytes);
  return view;
}

export { OFF };

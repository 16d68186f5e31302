import { ERROR_CODES, ProtocolError } from '../src/errors.js';
import { FrameDecoder, type FrameDecoderOptions } from '../src/frame-decoder.js';
import type { Frame } from '../src/frame.js';

/** A decoded frame reduced to plain data, for comparing decoder runs. */
export interface FrameSummary {
  type: number;
  flags: number;
  hops: number;
  maxHops: number;
  topicHash: number;
  origin: string;
  seq: number;
  timestamp: number;
  correlation: number;
  sid: number;
  topic: string;
  ext: string;
  payload: string;
  bytes: string;
}

export const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
export const unhex = (s: string): Uint8Array => {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
};

export function summarize(f: Frame): FrameSummary {
  return {
    type: f.type,
    flags: f.flags,
    hops: f.hops,
    maxHops: f.maxHops,
    topicHash: f.topicHash,
    origin: f.origin,
    seq: f.seq,
    timestamp: f.timestamp,
    correlation: f.correlation,
    sid: f.sid,
    topic: hex(f.topicBytes),
    ext: hex(f.extBytes),
    payload: hex(f.payload),
    bytes: hex(f.bytes),
  };
}

export interface RunResult {
  frames: FrameSummary[];
  errors: Array<{ code: string; num: number; fatal: boolean }>;
  /** Anything thrown by push()/end(), or a non-ProtocolError reported: must never happen. */
  thrown: unknown[];
}

const KNOWN_NUMS = new Set(Object.values(ERROR_CODES).map((d) => d.num));

/** Feeds `chunks` to a fresh decoder, then ends the stream, collecting everything. */
export function run(chunks: Uint8Array[], options?: FrameDecoderOptions): RunResult {
  const d = new FrameDecoder(options);
  const res: RunResult = { frames: [], errors: [], thrown: [] };
  const onFrame = (f: Frame): void => {
    res.frames.push(summarize(f));
  };
  const onError = (e: ProtocolError): void => {
    if (!(e instanceof ProtocolError) || !(e.code in ERROR_CODES) || !KNOWN_NUMS.has(e.num)) res.thrown.push(e);
    res.errors.push({ code: e.code, num: e.num, fatal: e.fatal });
  };
  try {
    for (const c of chunks) d.push(c, onFrame, onError);
    d.end(onError);
  } catch (e) {
    res.thrown.push(e);
  }
  return res;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Splits `b` at the given sorted cut points; each chunk is a copy in its own ArrayBuffer. */
export function splitAt(b: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, b.length]) {
    out.push(b.slice(prev, c));
    prev = c;
  }
  return out;
}

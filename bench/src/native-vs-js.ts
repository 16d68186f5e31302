/**
 * Native addon vs TypeScript fallback for the codec's byte work, all in one
 * run: frame scanning (64 B, 128 B, 4 KiB payloads), CRC32C (64 B .. 64 KiB,
 * plus small sizes that locate the crossover), topicHash of a 20-byte topic
 * and writeHeader. Prints a table and writes bench/results/native-vs-js.json.
 *
 *   npx tsc -b && node bench/dist/native-vs-js.js
 *
 * The numbers back the per-function choice of `ops` in @meshbus/native.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import {
  CRC_NATIVE_MIN_BYTES,
  SCAN_NATIVE_MIN_BYTES,
  describeOps,
  jsOps,
  nativeOps,
  nativeUnavailableReason,
  opsChoice,
  type ByteOps,
} from '@meshbus/native';
import { DEFAULT_MAX_FRAME, FIXED_SIZE, FrameType, SCAN_META, SCAN_SLOTS, type HeaderFields } from '@meshbus/proto';

const WARMUP_MS = 60;
const SAMPLE_MS = 70;
const SAMPLES = 3;

/** Runs `fn` (which does `unitsPerCall` units of work) and returns units per second, median of samples. */
function measure(fn: () => number, unitsPerCall: number): number {
  let sink = 0;
  let calls = 1;
  // Warm up and size a batch to about 10 ms.
  const w0 = performance.now();
  while (performance.now() - w0 < WARMUP_MS) {
    const t = performance.now();
    for (let i = 0; i < calls; i++) sink ^= fn();
    if (performance.now() - t < 10) calls *= 2;
  }
  const rates: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    let n = 0;
    const t0 = performance.now();
    let t = t0;
    do {
      for (let i = 0; i < calls; i++) sink ^= fn();
      n += calls;
      t = performance.now();
    } while (t - t0 < SAMPLE_MS);
    rates.push((n * unitsPerCall) / ((t - t0) / 1000));
  }
  if (sink === 0.5) console.log('unreachable');
  rates.sort((a, b) => a - b);
  return rates[Math.floor(rates.length / 2)]!;
}

const TOPIC = new TextEncoder().encode('orders.eu.created'); // 17 bytes

/** A stream of valid PUB frames with `payload`-byte payloads, `bytes` long at most. */
function buildStream(payload: number, bytes: number): { buf: Uint8Array; frames: number } {
  const frameSize = FIXED_SIZE + TOPIC.length + payload;
  const frames = Math.max(1, Math.floor(bytes / frameSize));
  const buf = new Uint8Array(frames * frameSize);
  const origin = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  for (let i = 0; i < frames; i++) {
    const off = i * frameSize;
    jsOps.writeHeader(buf, off, {
      type: FrameType.PUB,
      topicHash: jsOps.topicHash(TOPIC),
      origin,
      seq: i,
      timestamp: 1_795_000_000_000 + i,
      topicLen: TOPIC.length,
      payloadLen: payload,
    });
    buf.set(TOPIC, off + FIXED_SIZE);
    for (let j = 0; j < payload; j++) buf[off + FIXED_SIZE + TOPIC.length + j] = (i + j) & 0xff;
  }
  return { buf, frames };
}

const CHUNK = 64 * 1024;

/**
 * Scans the whole stream the way a connection does: 64 KiB chunks, the
 * partial frame at the end of one chunk starting the next (every frame here
 * is smaller than a chunk, so each call makes progress).
 */
function scanStream(s: FrameScanner, buf: Uint8Array, out: Uint32Array): number {
  let p = 0;
  let frames = 0;
  const len = buf.length;
  while (p < len) {
    frames += s.scan(buf, p, Math.min(len, p + CHUNK), DEFAULT_MAX_FRAME, out);
    if (out[2] !== 0 || out[1] === p) throw new Error(`scan stalled at ${p}: error ${out[2]}`);
    p = out[1]!;
  }
  return frames;
}
type FrameScanner = ByteOps['scanner'];

interface Row {
  group: string;
  case: string;
  unit: string;
  js: number;
  native: number | null;
  ratio: number | null;
  ops: 'native' | 'js';
}

const rows: Row[] = [];

function row(group: string, name: string, unit: string, mk: (o: ByteOps) => () => number, units: number, chosen: 'native' | 'js'): void {
  const js = measure(mk(jsOps), units);
  const native = nativeOps ? measure(mk(nativeOps), units) : null;
  rows.push({ group, case: name, unit, js, native, ratio: native === null ? null : native / js, ops: nativeOps ? chosen : 'js' });
}

const started = performance.now();
const out = new Uint32Array(SCAN_META + SCAN_SLOTS * 1024);

for (const payload of [64, 128, 4096]) {
  const { buf, frames } = buildStream(payload, 1 << 20);
  const check = scanStream(jsOps.scanner, buf, out);
  if (check !== frames) throw new Error(`js scan found ${check} of ${frames} frames`);
  if (nativeOps && scanStream(nativeOps.scanner, buf, out) !== frames) throw new Error('native scan disagrees');
  row('scan', `${payload} B payload`, 'frames/s', (o) => () => scanStream(o.scanner, buf, out), frames, opsChoice.scan);
}

{
  // Worst case for the crossing: a chunk holding exactly one small frame.
  const { buf } = buildStream(64, 1);
  const end = buf.length;
  const chosen = opsChoice.scan === 'native' && end >= SCAN_NATIVE_MIN_BYTES ? 'native' : 'js';
  row('scan', `1 frame per call (${end} B)`, 'frames/s', (o) => () => o.scanner.scan(buf, 0, end, DEFAULT_MAX_FRAME, out), 1, chosen);
}

const big = new Uint8Array(65536 + 64);
for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
for (const size of [16, 32, 64, 96, 128, 192, 256, 1024, 4096, 16384, 65536]) {
  const chosen = opsChoice.crc32c === 'native' && size >= CRC_NATIVE_MIN_BYTES ? 'native' : 'js';
  // Offset 1: the unaligned case a frame inside a socket chunk usually is.
  row('crc32c', `${size} B`, 'GB/s', (o) => () => o.crc32c(big, 1, 1 + size, 0), size / 1e9, chosen);
}

const topic20 = new TextEncoder().encode('sensors.eu-west.temp'); // 20 bytes
if (topic20.length !== 20) throw new Error('topic is not 20 bytes');
row('topicHash', '20 B topic', 'Mops/s', (o) => () => o.topicHash(topic20, 0, 20), 1e-6, opsChoice.topicHash);

const slab = new Uint8Array(64 * 1024);
const origin = new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]);
const fields: HeaderFields = {
  type: FrameType.PUB,
  flags: 0,
  hops: 0,
  maxHops: 8,
  topicHash: 0x12345678,
  origin,
  seq: 1,
  timestamp: 1_795_000_000_000,
  correlation: 0,
  topicLen: 17,
  extLen: 0,
  payloadLen: 128,
};
row(
  'writeHeader',
  'PUB header',
  'Mops/s',
  (o) => {
    let off = 0;
    return () => {
      fields.seq = (fields.seq ?? 0) + 1;
      o.writeHeader(slab, off, fields);
      off = (off + 64) & 0xffff;
      return slab[off + 63]!;
    };
  },
  1e-6,
  opsChoice.writeHeader,
);

const seconds = (performance.now() - started) / 1000;

function fmt(v: number | null): string {
  if (v === null) return '-';
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return v.toFixed(2);
}

console.log(describeOps());
if (!nativeOps) console.log(`native addon unavailable: ${nativeUnavailableReason}; only the JS column is measured`);
const header = ['group', 'case', 'unit', 'js', 'native', 'native/js', 'ops uses'];
const table = rows.map((r) => [r.group, r.case, r.unit, fmt(r.js), fmt(r.native), r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`, r.ops]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => t[i]!.length)));
const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
console.log(line(header));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const t of table) console.log(line(t));
console.log(`(${seconds.toFixed(1)} s)`);

const resultsDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, 'native-vs-js.json');
writeFileSync(
  file,
  JSON.stringify(
    {
      bench: 'native-vs-js',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      ops: describeOps(),
      crcNativeMinBytes: CRC_NATIVE_MIN_BYTES,
      scanNativeMinBytes: SCAN_NATIVE_MIN_BYTES,
      nativeAvailable: nativeOps !== undefined,
      rows,
      seconds,
    },
    null,
    2,
  ) + '\n',
);
console.log(`wrote ${file}`);

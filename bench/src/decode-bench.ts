/**
 * Decoder benchmark: frames per second and MB/s decoding a stream of PUB
 * frames with 128-byte payloads (topic "bench.topic.x"), fed to the
 * FrameDecoder in 64 KiB chunks as a socket would deliver them (frames cross
 * chunk boundaries). Warm-up, then timed rounds; prints the result and writes
 * bench/results/decode.json.
 *
 *   npx tsc -b && node bench/dist/decode-bench.js [seconds]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameDecoder, FrameType, encodeFrame, type Frame, type ProtocolError } from '@meshbus/proto';

const PAYLOAD = 128;
const CHUNK = 64 * 1024;
const TOPIC = 'bench.topic.x';
const STREAM_BYTES = 16 * 1024 * 1024;
const WARMUP_MS = 1500;
const SECONDS = Number(process.argv[2] ?? 5);

const frame = encodeFrame({ type: FrameType.PUB, topic: TOPIC, seq: 1, timestamp: Date.now(), payload: new Uint8Array(PAYLOAD).fill(0x61) });
const framesInStream = Math.floor(STREAM_BYTES / frame.length);
const stream = new Uint8Array(framesInStream * frame.length);
for (let i = 0; i < framesInStream; i++) stream.set(frame, i * frame.length);
const chunks: Uint8Array[] = [];
for (let o = 0; o < stream.length; o += CHUNK) chunks.push(stream.subarray(o, Math.min(o + CHUNK, stream.length)));

let frames = 0;
let checksum = 0;
const onFrame = (f: Frame): void => {
  frames++;
  checksum = (checksum + f.payloadLen + f.type) | 0; // touch the frame like a consumer would
};
const onError = (e: ProtocolError): void => {
  throw e;
};

/** Decodes the whole stream once with a fresh decoder. */
function pass(): void {
  const d = new FrameDecoder();
  for (const c of chunks) d.push(c, onFrame, onError);
  d.end(onError);
}

function runFor(ms: number): { frames: number; bytes: number; seconds: number } {
  const f0 = frames;
  let passes = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  do {
    pass();
    passes++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  } while (elapsed < ms);
  if (frames - f0 !== passes * framesInStream) throw new Error('frame count mismatch');
  return { frames: frames - f0, bytes: passes * stream.length, seconds: elapsed / 1000 };
}

runFor(WARMUP_MS);
const rounds: Array<{ framesPerSec: number; mbPerSec: number }> = [];
const ROUNDS = 5;
for (let r = 0; r < ROUNDS; r++) {
  const x = runFor((SECONDS * 1000) / ROUNDS);
  rounds.push({ framesPerSec: x.frames / x.seconds, mbPerSec: x.bytes / x.seconds / 1e6 });
}
const sorted = [...rounds].sort((a, b) => a.framesPerSec - b.framesPerSec);
const median = sorted[Math.floor(sorted.length / 2)]!;
const result = {
  benchmark: 'proto FrameDecoder, js scanner',
  frameSize: frame.length,
  payloadBytes: PAYLOAD,
  topic: TOPIC,
  chunkBytes: CHUNK,
  streamBytes: stream.length,
  seconds: SECONDS,
  framesPerSec: Math.round(median.framesPerSec),
  mbPerSec: Number(median.mbPerSec.toFixed(1)),
  rounds: rounds.map((r) => ({ framesPerSec: Math.round(r.framesPerSec), mbPerSec: Number(r.mbPerSec.toFixed(1)) })),
  node: process.version,
  date: new Date().toISOString(),
  checksum,
};
console.log(
  `decode: ${(result.framesPerSec / 1e6).toFixed(2)} M frames/s, ${result.mbPerSec} MB/s ` +
    `(${frame.length}-byte frames, ${PAYLOAD}-byte payload, ${CHUNK / 1024} KiB chunks, median of ${ROUNDS} rounds, ${process.version})`,
);
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'decode.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${out}`);

/**
 * @meshbus/native: the codec's hot byte work (frame scanning, CRC32C, topic
 * hash, header writing) behind one interface with two implementations:
 *
 *  - `jsOps`: the pure TypeScript functions of @meshbus/proto; runs anywhere.
 *  - `nativeOps`: the Node-API addon in build/Release (undefined when it was
 *    not built, failed to load, or MESHBUS_NATIVE=0).
 *
 * `ops` is chosen once, at load time, function by function: each function
 * uses whichever implementation measured faster for the node's workload
 * (see README.md, "How the choice is made"). Both give identical results for
 * identical valid input; the native functions throw TypeError/RangeError for
 * arguments the TypeScript versions would silently misread.
 *
 * Importing this module prints nothing; a node logs `describeOps()` once at
 * start-up.
 */
import { createRequire } from 'node:module';
import {
  DEFAULT_MAX_HOPS,
  ERROR_CODES,
  FIXED_SIZE,
  FrameType,
  KNOWN_FLAGS,
  MAGIC,
  OFF,
  Repeats,
  SCAN_REPEAT,
  VERSION,
  crc32c as jsCrc32c,
  jsRepeatScanner,
  topicHash as jsTopicHash,
  writeHeader as jsWriteHeader,
  type FrameScanner,
  type HeaderFields,
} from '@meshbus/proto';

/** The byte operations the codec needs; the same signatures as @meshbus/proto. */
export interface ByteOps {
  /** 'native' when at least one function runs in the addon. */
  readonly name: 'native' | 'js';
  readonly scanner: FrameScanner;
  crc32c(buf: Uint8Array, start?: number, end?: number, crc?: number): number;
  topicHash(bytes: Uint8Array, start?: number, end?: number): number;
  writeHeader(dst: Uint8Array, off: number, f: HeaderFields): void;
}

/** Which implementation `ops` uses for each function. */
export interface OpsChoice {
  readonly scan: 'native' | 'js';
  /** 'native' means: native from CRC_NATIVE_MIN_BYTES up, JS below (SCAN_NATIVE_MIN_BYTES for scan). */
  readonly crc32c: 'native' | 'js';
  readonly topicHash: 'native' | 'js';
  readonly writeHeader: 'native' | 'js';
}

/**
 * Below this many bytes `ops.crc32c` stays in JS: the boundary crossing
 * costs more than the hardware CRC saves (measured by
 * bench/src/native-vs-js.ts; see README.md).
 */
export const CRC_NATIVE_MIN_BYTES = 128;

/**
 * Chunks shorter than this go to the JS scanner: they cannot hold two
 * frames, and for a single frame the crossing costs about what the native
 * scan saves (bench: 1 frame per call, native 0.88x).
 */
export const SCAN_NATIVE_MIN_BYTES = 2 * FIXED_SIZE;

/** The raw addon exports (src/addon.cc). */
interface Addon {
  scan(buf: Uint8Array, start: number, end: number, maxFrameLength: number, out: Uint32Array, repeats?: boolean | Repeats): number;
  crc32c(buf: Uint8Array, start?: number, end?: number, crc?: number): number;
  topicHash(bytes: Uint8Array, start?: number, end?: number): number;
  writeHeader(
    dst: Uint8Array,
    off: number,
    type: number,
    flags: number,
    hops: number,
    maxHops: number,
    topicHash: number,
    origin: Uint8Array | undefined,
    seq: number,
    timestamp: number,
    correlation: number,
    topicLen: number,
    extLen: number,
    payloadLen: number,
    sid: number,
  ): void;
  /** src/allocator.cc: glibc's M_TOP_PAD; false where the C library has no such setting. */
  tuneAllocator?(topPadBytes: number): boolean;
  readonly crcImpl: string;
  /** The wire layout compiled into the addon. */
  readonly layout: unknown;
}

const ADDON_PATH = '../build/Release/meshbus_native.node';

/** JSON with sorted keys, for comparing plain data. */
function canon(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canon(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** The layout @meshbus/proto defines, in the shape the addon reports it. */
function protoLayout(): unknown {
  const errors: Record<string, number> = {};
  for (const k of [
    'MB_ERR_BAD_MAGIC',
    'MB_ERR_UNSUPPORTED_VERSION',
    'MB_ERR_UNKNOWN_TYPE',
    'MB_ERR_RESERVED_BITS',
    'MB_ERR_LENGTH_MISMATCH',
    'MB_ERR_FRAME_TOO_LARGE',
    'MB_ERR_BAD_CRC',
  ] as const)
    errors[k] = ERROR_CODES[k].num;
  return {
    OFF,
    FIXED_SIZE,
    MAGIC,
    VERSION,
    KNOWN_FLAGS,
    SCAN_REPEAT,
    REPEATS: Repeats,
    TYPES: Object.values(FrameType).sort((a, b) => a - b),
    ERRORS: errors,
  };
}

function envFlag(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env[name] : undefined;
}

let addon: Addon | undefined;
/** Why the addon is not in use, or undefined when it loaded. */
export let nativeUnavailableReason: string | undefined;

if (envFlag('MESHBUS_NATIVE') === '0') {
  nativeUnavailableReason = 'disabled by MESHBUS_NATIVE=0';
} else {
  try {
    const loaded = createRequire(import.meta.url)(ADDON_PATH) as Addon;
    // A build from an older wire layout would scan with the wrong rules.
    if (canon(loaded.layout) === canon(protoLayout())) addon = loaded;
    else nativeUnavailableReason = 'addon is stale: its wire layout differs from @meshbus/proto (rebuild it)';
  } catch (err) {
    const code = (err as { code?: string }).code;
    nativeUnavailableReason =
      code === 'MODULE_NOT_FOUND' ? 'addon not built' : `addon failed to load: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** The CRC32C engine of the addon ('sse4.2', 'armv8-crc' or 'table'), or undefined. */
export const nativeCrcImpl: string | undefined = addon?.crcImpl;

export const jsOps: ByteOps = Object.freeze({
  name: 'js',
  // With `repeats` (a node's client sessions and peer links ask for them), as the addon's scan.
  scanner: jsRepeatScanner,
  crc32c: jsCrc32c,
  topicHash: jsTopicHash,
  writeHeader: jsWriteHeader,
});

function makeNativeOps(a: Addon): ByteOps {
  const nativeWriteHeader = a.writeHeader;
  return Object.freeze({
    name: 'native',
    scanner: Object.freeze({ name: 'native', scan: a.scan }),
    crc32c: a.crc32c,
    topicHash: a.topicHash,
    writeHeader(dst: Uint8Array, off: number, f: HeaderFields): void {
      const origin = f.origin ?? undefined;
      // An origin that is not 8 bytes is refused by the reference
      // implementation with its own error: let it throw that.
      if (origin !== undefined && origin.length !== 8) return jsWriteHeader(dst, off, f);
      nativeWriteHeader(
        dst,
        off,
        f.type,
        f.flags ?? 0,
        f.hops ?? 0,
        f.maxHops ?? DEFAULT_MAX_HOPS,
        f.topicHash ?? 0,
        origin,
        f.seq ?? 0,
        f.timestamp ?? 0,
        f.correlation ?? 0,
        f.topicLen ?? 0,
        f.extLen ?? 0,
        f.payloadLen ?? 0,
        f.sid ?? 0,
      );
    },
  });
}

/** The addon's functions, or undefined when it is not available. */
export const nativeOps: ByteOps | undefined = addon ? makeNativeOps(addon) : undefined;

/**
 * The measured choice when the addon is available (bench/src/native-vs-js.ts,
 * 2026-11-23): scanning and CRC32C of 128 bytes and more are faster native;
 * topicHash of short topics and writeHeader are faster in JS, where the JIT
 * inlines them and no boundary is crossed.
 */
const PREFERRED: OpsChoice = { scan: 'native', crc32c: 'native', topicHash: 'js', writeHeader: 'js' };
const ALL_JS: OpsChoice = { scan: 'js', crc32c: 'js', topicHash: 'js', writeHeader: 'js' };

export const opsChoice: OpsChoice = Object.freeze(nativeOps ? { ...PREFERRED } : { ...ALL_JS });

function makeOps(n: ByteOps | undefined, c: OpsChoice): ByteOps {
  if (!n) return jsOps;
  const nativeCrc = n.crc32c;
  const crc32c =
    c.crc32c === 'native'
      ? function crc32c(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
          return end - start < CRC_NATIVE_MIN_BYTES ? jsCrc32c(buf, start, end, crc) : nativeCrc(buf, start, end, crc);
        }
      : jsOps.crc32c;
  const nativeScan = n.scanner.scan;
  const jsScan = jsRepeatScanner.scan;
  const scanner: FrameScanner =
    c.scan === 'native'
      ? Object.freeze({
          name: 'native',
          scan(buf: Uint8Array, start: number, end: number, maxFrameLength: number, out: Uint32Array, repeats: boolean | Repeats = false): number {
            return end - start < SCAN_NATIVE_MIN_BYTES
              ? jsScan(buf, start, end, maxFrameLength, out, repeats)
              : nativeScan(buf, start, end, maxFrameLength, out, repeats);
          },
        })
      : jsRepeatScanner;
  const anyNative = c.scan === 'native' || c.crc32c === 'native' || c.topicHash === 'native' || c.writeHeader === 'native';
  return Object.freeze({
    name: anyNative ? 'native' : 'js',
    scanner,
    crc32c,
    topicHash: c.topicHash === 'native' ? n.topicHash : jsOps.topicHash,
    writeHeader: c.writeHeader === 'native' ? n.writeHeader : jsOps.writeHeader,
  });
}

/** The byte operations a node uses: chosen once, here, at load time. */
export const ops: ByteOps = makeOps(nativeOps, opsChoice);

/**
 * One line for the node's start-up log, e.g.
 * `byte ops: native (scan=native>=128B crc32c=native>=128B/sse4.2 topicHash=js writeHeader=js)`
 * or `byte ops: js (native addon not built)`.
 */
export function describeOps(): string {
  if (!nativeOps) return `byte ops: js (native ${nativeUnavailableReason ?? 'unavailable'})`;
  const c = opsChoice;
  const scan = c.scan === 'native' ? `native>=${SCAN_NATIVE_MIN_BYTES}B` : 'js';
  const crc = c.crc32c === 'native' ? `native>=${CRC_NATIVE_MIN_BYTES}B/${nativeCrcImpl}` : 'js';
  return `byte ops: ${ops.name} (scan=${scan} crc32c=${crc} topicHash=${c.topicHash} writeHeader=${c.writeHeader})`;
}

/**
 * Free memory glibc keeps at the top of its heap when it trims, and asks the
 * kernel for beyond each growth: 16 MiB. Node makes two allocations per
 * socket read (the 64 KiB read buffer and a copy of the read's size, freed
 * by the garbage collector in bulk); with glibc's defaults the free top is
 * handed back to the kernel and faulted in again, 15-20 thousand page
 * faults a second in a node forwarding 128-byte events, which then ran at
 * about half the rate of runs whose heap happened to leave nothing to trim
 * (bench/README, "Page faults and the C allocator"). 4 MiB still let
 * 8-22 thousand faults through in 3 s of that load; 16 MiB, under 300.
 */
export const NODE_TOP_PAD = 16 * 1024 * 1024;

/** What tuneAllocator did: 'applied', or why not. */
export type AllocatorTuning = 'applied' | 'set by the operator' | 'not glibc' | 'native addon not loaded';

/**
 * Sets the C allocator for a process whose main job is a node: glibc's
 * `M_TOP_PAD` to `topPadBytes` (default NODE_TOP_PAD), which also fixes its
 * mmap and trim thresholds at their defaults (no dynamic adjustment). It
 * changes the whole process, so only the code that owns the process calls
 * it (`meshbus start` does, in every worker); a library embedding a node
 * leaves it to its application. Left alone when the operator set glibc's
 * malloc through the environment (`MALLOC_TOP_PAD_`, `MALLOC_TRIM_THRESHOLD_`,
 * `MALLOC_MMAP_THRESHOLD_` or a `glibc.malloc` tunable in `GLIBC_TUNABLES`).
 * Costs up to `topPadBytes` of resident memory once the heap has grown and
 * shrunk (measured under the load above: 80-81 against 72-76 MB).
 * @throws RangeError when `topPadBytes` is not an integer in [0, 1 GiB].
 */
export function tuneAllocator(topPadBytes = NODE_TOP_PAD): AllocatorTuning {
  const env = typeof process !== 'undefined' ? process.env : {};
  if (['MALLOC_TOP_PAD_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_'].some((k) => env[k] !== undefined) || /glibc\.malloc\./.test(env['GLIBC_TUNABLES'] ?? '')) {
    return 'set by the operator';
  }
  if (!Number.isInteger(topPadBytes) || topPadBytes < 0 || topPadBytes > 2 ** 30) throw new RangeError('tuneAllocator: topPadBytes must be an integer in [0, 1 GiB]');
  if (!addon?.tuneAllocator) return 'native addon not loaded';
  return addon.tuneAllocator(topPadBytes) ? 'applied' : 'not glibc';
}

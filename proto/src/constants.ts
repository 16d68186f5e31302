/**
 * Wire constants of the meshbus frame format. SPEC.md is normative; every
 * number here is documented there with its byte offset and meaning.
 */

/** Bytes of the big-endian length prefix that starts every frame. */
export const PREFIX_SIZE = 4;
/** Bytes of the fixed header that follows the prefix. */
export const HEADER_SIZE = 60;
/** Prefix + header: the fixed part of every frame, one cache line. */
export const FIXED_SIZE = PREFIX_SIZE + HEADER_SIZE; // 64

/** 'M' 'B' read as a big-endian u16. */
export const MAGIC = 0x4d42;
/** The only protocol version this codec speaks. */
export const VERSION = 1;
export const MIN_VERSION = 1;
export const MAX_VERSION = 1;

/** Byte offsets from the first byte of the frame (the length prefix). */
export const OFF = {
  LENGTH: 0, // u32 bytes after the prefix: 60 + topicLen + extLen + payloadLen
  MAGIC: 4, // u16
  VERSION: 6, // u8
  TYPE: 7, // u8
  FLAGS: 8, // u16
  HOPS: 10, // u8
  MAX_HOPS: 11, // u8
  TOPIC_HASH: 12, // u32 FNV-1a of the topic bytes
  ORIGIN: 16, // u64 (two u32: high then low)
  SEQ: 24, // u64 (two u32: high then low)
  TIMESTAMP: 32, // u64 milliseconds since the Unix epoch
  CORRELATION: 40, // u32
  TOPIC_LEN: 44, // u16
  EXT_LEN: 46, // u16
  PAYLOAD_LEN: 48, // u32
  SID: 52, // u32 subscription id of a queue-group delivery, else 0
  RESERVED: 56, // 4 bytes, zero
  CRC: 60, // u32 CRC32C of bytes [0, 60)
} as const;

/** Number of bytes covered by the header CRC: prefix and header up to the CRC field. */
export const CRC_COVERED = OFF.CRC;

export const FrameType = {
  HELLO: 0x01,
  WELCOME: 0x02,
  AUTH: 0x03,
  PUB: 0x10,
  REQ: 0x11,
  SUB: 0x20,
  UNSUB: 0x21,
  ACK: 0x30,
  NACK: 0x31,
  PING: 0x40,
  PONG: 0x41,
  ERROR: 0x50,
  INTEREST: 0x60,
  PEERS: 0x61,
  TRACE_HOP: 0x62,
  GOODBYE: 0x70,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES = new Uint8Array(256);
for (const t of Object.values(FrameType)) KNOWN_TYPES[t] = 1;
/** True when `t` is a frame type this version defines. */
export function isKnownType(t: number): t is FrameType {
  return KNOWN_TYPES[t & 0xff] === 1 && t >= 0 && t < 256;
}

export const FrameTypeName: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(FrameType).map(([k, v]) => [v, k]),
);

export const Flags = {
  /** Every node the event passes through reports a TRACE_HOP to the origin. */
  TRACE: 1 << 0,
  /** The publisher wants an ACK/NACK carrying this frame's correlation id. */
  ACK_REQUESTED: 1 << 1,
} as const;
/** Flag bits defined by version 1; any other bit set is a protocol error. */
export const KNOWN_FLAGS = Flags.TRACE | Flags.ACK_REQUESTED;

/** Default limits; a node announces its own in WELCOME. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
export const DEFAULT_MAX_TOPIC = 256;
export const DEFAULT_MAX_TOPIC_DEPTH = 32;
export const MAX_EXT = 0xffff;

/**
 * Most maps and arrays an extension block may hold, empty ones included
 * (SPEC §8; checked by proto msgpack-subset.ts on nodes, counted by the
 * bundles' decoder). A container is one byte on the wire and an object a
 * decoder builds: msgpackr takes ~150 ns per empty map against ~1 ns per
 * byte of a string, so a 65 KB block of 65,000 empty maps in an unknown key
 * cost a node ~17 ms to take in (a plain 65 KB header 0.75 ms): a client
 * sending 4 MB/s of such PUBs kept a core busy. The fields meshbus writes
 * use a few.
 */
export const MAX_EXT_CONTAINERS = 256;
export const DEFAULT_MAX_HOPS = 8;
/**
 * Most bytes of whole frames a sender puts in one write batch (a single
 * larger frame goes alone): 64 KiB less the largest WebSocket header (14 B),
 * one socket read of the receiver's. The node's runs of events and the
 * SDK's connection cut there, and a WebSocket message of small frames
 * (SPEC §2); one holding large frames is smaller still (WS_MESSAGE_BYTES).
 */
export const BATCH_BYTES = 64 * 1024 - 14;
/**
 * Most bytes a WebSocket message of several frames may reach with a frame
 * of WS_LARGE_FRAME bytes or more added to it (a single larger frame goes
 * alone; SPEC §2; `messageLimit`): 16 KiB less the largest WebSocket header. A
 * receiver reads its socket 64 KiB at a time and `ws` copies every message
 * that spans two reads into fresh memory (`Receiver.consume`): messages of
 * 64 KiB nearly all did, one of 16 KiB in four does. Measured
 * (bench/README.md "WebSocket gateway", tenth pass), 1 → 1 over WebSocket at
 * 4 KiB: the node's CPU per event 12.2-14.6 µs with 64 KiB messages,
 * 7.8-10.1 with 16 KiB; 8 KiB and 32 KiB were worse, and so were the node's
 * own messages left at 64 KiB (its subscribers are the receivers that fell
 * behind). Small events keep messages of up to BATCH_BYTES: at 16 and 128 B
 * messages of 16 KiB cost the node 10-15 % more CPU per event (a system
 * call and a message event per 16 KiB), where the copies weigh little
 * beside the per-event work.
 */
export const WS_MESSAGE_BYTES = 16 * 1024 - 14;
/** A frame of at least this many bytes joins a WebSocket message only within WS_MESSAGE_BYTES (SPEC §2). */
export const WS_LARGE_FRAME = 1024;
/**
 * The largest frame a decoder accepts by default: header, a maximal topic and
 * extension, and the default payload limit.
 */
export const DEFAULT_MAX_FRAME = HEADER_SIZE + 0xffff + MAX_EXT + DEFAULT_MAX_PAYLOAD;

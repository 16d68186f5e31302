import { FrameType, decodeBody, type Frame } from '@meshbus/proto';

/**
 * The one way a node decodes a peer's control body (SPEC 7, "Peer links"):
 * within a bound on maps and arrays, checked on the bytes before msgpackr
 * builds anything (proto decodeBody). An empty map is one byte on the wire
 * and an object to build (~150 times a byte of a string): unbounded, a 1 MB
 * INTEREST of them held a node's event loop ~0.3 s per frame, and anything
 * that reached the cluster port could spend 16 KiB of them on its HELLO
 * before authenticating.
 *
 * The bound is what a legitimate body of that type and size holds:
 * - HELLO, WELCOME, AUTH, ERROR: the body, HELLO `v` and the peer info, and
 *   room (PEER_FIXED_CONTAINERS): before authentication nothing more.
 * - INTEREST: the body, `add` and `del`, and one array per add entry. An
 *   entry `[id, pattern]` is at least 4 bytes (fixarray, fixint, a
 *   one-character fixstr; the queue and distance add more), so a body of n
 *   bytes holds at most n / 4 of them.
 * - PEERS: the body, `peers` and `links`, and one map per entry; peer info
 *   is at least 44 bytes (`id` and its 16 digits, `cluster`, `client`): one
 *   container per 16 bytes leaves later versions room for nested fields.
 * A hostile body then costs the node what a legitimate one of its size does.
 */
export const PEER_FIXED_CONTAINERS = 4;
/** Fewest bytes of an INTEREST add entry ([id, pattern]: 0x92, a fixint, a one-character fixstr). */
const INTEREST_ENTRY_BYTES = 4;
/** Bytes of a PEERS body per map or array it may hold past the fixed ones. */
const PEERS_BYTES_PER_CONTAINER = 16;

/** Most maps and arrays a peer's body of frame type `type` and `bytes` bytes may hold. */
export function peerBodyContainers(type: FrameType, bytes: number): number {
  if (type === FrameType.INTEREST) return PEER_FIXED_CONTAINERS + Math.floor(bytes / INTEREST_ENTRY_BYTES);
  if (type === FrameType.PEERS) return PEER_FIXED_CONTAINERS + Math.floor(bytes / PEERS_BYTES_PER_CONTAINER);
  return PEER_FIXED_CONTAINERS;
}

/** A peer's control body, decoded within its bound; ProtocolError MB_ERR_BAD_BODY past it (or not a plain map). */
export function peerBody(f: Frame): Record<string, unknown> {
  return decodeBody(f.payload, peerBodyContainers(f.type, f.payloadLen));
}

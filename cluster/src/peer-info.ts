import { SessionError } from '@meshbus/proto';
import { reachableAddress } from '@meshbus/core';
import { isRegionName, parseAddress } from './options.js';

/** What a node tells its peers about itself. */
export interface PeerInfo {
  /** Node id, 16 lowercase hex digits (core's randomId). */
  id: string;
  /** Human name: at most MAX_PEER_NAME characters, no control or format characters. May be empty. */
  name: string;
  /** Address peers dial: host:port (IPv6 in brackets), port 1..65535. */
  cluster: string;
  /** Address or URL clients connect to: 1..MAX_CLIENT_URL characters, printable, no spaces. */
  client: string;
  /** Set by a leaf node in its HELLO: its hub treats the link as a leaf's (cluster/README.md, "Leaf nodes"). */
  leaf?: true;
  /** The node's region, when it has one (ClusterOptions.region). */
  region?: string;
  /** Set in the HELLO of a gateway link (cluster/README.md, "Gateways"). */
  gateway?: true;
  /**
   * The mesh mode of a node that is not a leaf: a full-mesh and a partial-mesh node
   * refuse to link (each would give the other's subscribers events twice). Absent
   * from older nodes (then not checked); an unknown value is ignored.
   */
  mesh?: 'full' | 'partial';
  /**
   * The largest event payload the node accepts, bytes (its `maxPayload`): a
   * peer never forwards it a larger one (SPEC section 7, cluster/README.md
   * "Limits"). Absent from older nodes: they are taken to accept the default
   * (DEFAULT_MAX_PAYLOAD, 1 MiB).
   */
  maxPayload?: number;
  /** The node's WebSocket URL (ws:// or wss://), when it has a gateway: told to WebSocket clients, which cannot use `client`. */
  ws?: string;
  /**
   * The node reads and writes the re-sent marker of queue copies (the top bit
   * of `sid`, SPEC 10.3, member-gone.ts) and announces interest ids below it.
   * Absent from older nodes: a copy to one is never marked, and one from it is
   * taken as re-sent by its rule (sid set, hops 2 or more).
   */
  resentMark?: true;
  /**
   * A leaf that proves a leaf key instead of the cluster secret (leaf-keys.ts):
   * the key's label and the salt its node id was made from. Only with `leaf`.
   */
  keyLabel?: string;
  keySalt?: string;
}

/** Longest node name a peer may claim, in characters. */
export const MAX_PEER_NAME = 64;
/** Longest client address or URL a peer may claim, in characters. */
export const MAX_CLIENT_URL = 256;
/** Longest cluster address a peer may claim (a DNS name of 253 characters and a port). */
const MAX_CLUSTER_ADDR = 262;

const NODE_ID = /^[0-9a-f]{16}$/;
/** Control, format, line and paragraph separators, unassigned and private-use code points. */
const UNPRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/u;

/** A node id, name or address from a peer (handshake or gossip) is malformed: MB_ERR_BAD_PEER_INFO. */
export class PeerInfoError extends SessionError {
  constructor(detail: string) {
    super('MB_ERR_BAD_PEER_INFO', detail);
  }
}

/**
 * `peer` with a wildcard host in its cluster or client address ("0.0.0.0:4481",
 * what a node bound to every interface without --advertise says) replaced by
 * `remoteIp`, the address this link reached it at (as NATS does for routes).
 * Taken as said, peers gossiped "0.0.0.0:4481" (dialed: their own machine) and
 * clients were told to fail over to "0.0.0.0:4480" (their own machine).
 */
export function reachableAt(peer: PeerInfo, remoteIp: string): PeerInfo {
  const fix = (a: string): string => reachableAddress(a, remoteIp);
  const cluster = fix(peer.cluster);
  const client = fix(peer.client);
  const ws = peer.ws === undefined ? undefined : fix(peer.ws);
  return cluster === peer.cluster && client === peer.client && ws === peer.ws ? peer : { ...peer, cluster, client, ...(ws !== undefined ? { ws } : {}) };
}

/** True for a leaf key's salt (leaf-keys.ts): 32 lowercase hex digits. */
export function isLeafSalt(v: unknown): v is string {
  return typeof v === 'string' && /^[0-9a-f]{32}$/.test(v);
}

/** True for a node id in the format every node uses (16 lowercase hex digits). */
export function isNodeId(v: unknown): v is string {
  return typeof v === 'string' && NODE_ID.test(v);
}

/** The problem with a node name, or undefined when it is fine (also applied to this node's own name). */
export function nameProblem(name: string): string | undefined {
  if ([...name].length > MAX_PEER_NAME) return `name longer than ${MAX_PEER_NAME} characters`;
  if (UNPRINTABLE.test(name)) return 'name has control or unprintable characters';
  return undefined;
}

/** The problem with a cluster address (host:port), or undefined when it is fine. */
export function clusterAddressProblem(addr: string): string | undefined {
  if (addr.length > MAX_CLUSTER_ADDR || UNPRINTABLE.test(addr)) return 'cluster address is not host:port';
  try {
    parseAddress(addr);
    return undefined;
  } catch {
    return 'cluster address is not host:port';
  }
}

/** The problem with a client address to advertise (host:port, tcp:// or tls://), or undefined when it is fine. */
export function clientAddressProblem(addr: string): string | undefined {
  if (addr.length > MAX_CLIENT_URL || UNPRINTABLE.test(addr) || /\s/.test(addr)) return `not host:port of at most ${MAX_CLIENT_URL} printable characters`;
  try {
    parseAddress(addr.replace(/^(tcp|tls):\/\//i, ''));
    return undefined;
  } catch {
    return 'not host:port, tcp://host:port or tls://host:port';
  }
}

/**
 * Checks peer info from the wire (a HELLO, a WELCOME or a gossip entry).
 * Returns it as a fresh object with only the known fields; throws
 * PeerInfoError (MB_ERR_BAD_PEER_INFO) naming the first bad field.
 */
export function parsePeerInfo(v: unknown): PeerInfo {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PeerInfoError('peer info is not a map');
  const p = v as Record<string, unknown>;
  if (!isNodeId(p.id)) throw new PeerInfoError('node id is not 16 lowercase hex digits');
  const name = p.name ?? '';
  if (typeof name !== 'string') throw new PeerInfoError(`node ${p.id}: name is not a string`);
  const np = nameProblem(name);
  if (np) throw new PeerInfoError(`node ${p.id}: ${np}`);
  if (typeof p.cluster !== 'string') throw new PeerInfoError(`node ${p.id}: cluster address is not a string`);
  const cp = clusterAddressProblem(p.cluster);
  if (cp) throw new PeerInfoError(`node ${p.id}: ${cp}`);
  if (typeof p.client !== 'string' || p.client.length === 0 || p.client.length > MAX_CLIENT_URL || UNPRINTABLE.test(p.client) || /\s/.test(p.client)) {
    throw new PeerInfoError(`node ${p.id}: client address is not 1..${MAX_CLIENT_URL} printable characters`);
  }
  // A node's maxPayload is a positive u32 (core options.ts): anything else is a broken or hostile peer, not a guess to make.
  if (p.maxPayload !== undefined && !(Number.isInteger(p.maxPayload) && (p.maxPayload as number) > 0 && (p.maxPayload as number) <= 0xffffffff)) {
    throw new PeerInfoError(`node ${p.id}: maxPayload is not an integer 1..4294967295`);
  }
  if (p.ws != null && (typeof p.ws !== 'string' || p.ws.length > MAX_CLIENT_URL || UNPRINTABLE.test(p.ws) || !/^wss?:\/\/\S+$/.test(p.ws))) {
    throw new PeerInfoError(`node ${p.id}: ws is not a ws:// or wss:// URL of at most ${MAX_CLIENT_URL} characters`);
  }
  if (p.region !== undefined && !isRegionName(p.region)) throw new PeerInfoError(`node ${p.id}: region is not 1..64 characters of A-Z, a-z, 0-9, _ and -`);
  const keyed = p.keyLabel !== undefined || p.keySalt !== undefined;
  if (keyed && (p.leaf !== true || !isRegionName(p.keyLabel) || !isLeafSalt(p.keySalt))) {
    throw new PeerInfoError(`node ${p.id}: a leaf key needs leaf, a keyLabel of 1..64 characters of A-Z, a-z, 0-9, _ and - and a keySalt of 32 hex digits`);
  }
  return {
    id: p.id,
    name,
    cluster: p.cluster,
    client: p.client,
    ...(p.leaf === true ? { leaf: true as const } : {}),
    ...(p.region !== undefined ? { region: p.region } : {}),
    ...(p.gateway === true ? { gateway: true as const } : {}),
    ...(p.mesh === 'full' || p.mesh === 'partial' ? { mesh: p.mesh } : {}),
    ...(p.maxPayload !== undefined ? { maxPayload: p.maxPayload as number } : {}),
    ...(typeof p.ws === 'string' ? { ws: p.ws } : {}),
    ...(p.resentMark === true ? { resentMark: true as const } : {}),
    ...(keyed ? { keyLabel: p.keyLabel as string, keySalt: p.keySalt as string } : {}),
  };
}

/**
 * Repros of the twenty-sixth session's review of the hand-back ledger (a helper with a keyed leaf of its own):
 * a CRC fingerprint forged by fixing 4 payload bytes (accepted before, the leaf's rules skipped), and the
 * ledger's list of sent keys growing without bound under a leaf that hands everything back and never
 * answers a checkpoint (200,000 keys before; at most 65,536 now).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { FrameType, OFF, FIXED_SIZE, crc32c, decodeBody, encodeFrame, readU32 } from '@meshbus/proto';
import { RawClient, until, type Got } from '@meshbus/testkit';
import { RESENT } from '../../src/member-gone.js';
import { rawPeer, type TestNode } from '../mesh-helpers.js';

export const keyHex = (secret: string, label: string): string => createHmac('sha256', secret).update(`meshbus-leaf-key-v1|${label}`).digest('hex');
export const idFor = (hex: string, salt: string): string => createHmac('sha256', hex).update(`meshbus-leaf-id-v1|${salt}`).digest('hex').slice(0, 16);

export async function rawLeaf(secret: string, clients: Array<{ close(): unknown }>, hub: TestNode, label: string): Promise<{ c: RawClient; id: string }> {
  const salt = randomBytes(16).toString('hex');
  const hex = keyHex(secret, label);
  const id = idFor(hex, salt);
  const c = await rawPeer(hub.cluster.port, { id, name: 'raw', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true, keyLabel: label, keySalt: salt, resentMark: true } as never, hex);
  clients.push(c);
  await until(() => hub.cluster.peers().some((p) => p.id === id && p.state === 'up'), `raw leaf ${label} up`);
  return { c, id };
}

export { announced } from '../mesh-helpers.js';

/** The hub's fingerprint (sent-copies.ts), full 32 bits. */
export function fp(b: Uint8Array): number {
  let c = crc32c(b, OFF.LENGTH, OFF.HOPS);
  c = crc32c(b, OFF.MAX_HOPS, OFF.SID, c);
  return crc32c(b, FIXED_SIZE, b.length, c);
}

/**
 * A frame with `copy`'s origin, seq, timestamp, flags, correlation, maxHops but `topic` and `payload`
 * of the attacker's choosing (+4 trailing bytes solved so that the CRC-32C fingerprint equals the copy's).
 */
export function forge(copy: Got, groupId: number, topic: string, payload: string): Buffer {
  const g = copy.bytes;
  const spec = {
    type: FrameType.PUB,
    topic,
    payload: Buffer.concat([Buffer.from(payload), Buffer.alloc(4)]),
    origin: Buffer.from(copy.origin, 'hex'),
    seq: copy.seq,
    timestamp: readU32(g, OFF.TIMESTAMP) * 2 ** 32 + readU32(g, OFF.TIMESTAMP + 4),
    correlation: readU32(g, OFF.CORRELATION),
    flags: g.readUInt16BE(OFF.FLAGS),
    hops: copy.hops + 1,
    maxHops: copy.maxHops,
    sid: groupId + RESENT,
  };
  const b = Buffer.from(encodeFrame(spec as never));
  const target = fp(g);
  const w = b.length - 4;
  const base = fp(b);
  // Columns: effect of each of the 32 window bits on the CRC (affine, so XOR with base).
  const cols: number[] = [];
  for (let bit = 0; bit < 32; bit++) {
    b[w + (bit >> 3)] = 1 << (bit & 7);
    cols.push((fp(b) ^ base) >>> 0);
    b[w + (bit >> 3)] = 0;
  }
  // Solve sum(x_i * cols[i]) = target ^ base over GF(2).
  const rows: Array<{ v: number; x: number }> = cols.map((v, i) => ({ v, x: 2 ** i }));
  const want = (target ^ base) >>> 0;
  // Gaussian elimination on basis vectors.
  const basis: Array<{ v: number; x: number } | undefined> = new Array(32);
  for (const r of rows) {
    let { v, x } = r;
    for (let k = 31; k >= 0 && v !== 0; k--) {
      if (((v >>> k) & 1) === 0) continue;
      const bk = basis[k];
      if (bk === undefined) { basis[k] = { v, x }; v = 0; break; }
      v = (v ^ bk.v) >>> 0;
      x = x ^ bk.x;
    }
  }
  let v = want;
  let x = 0;
  for (let k = 31; k >= 0; k--) {
    if (((v >>> k) & 1) === 0) continue;
    const bk = basis[k];
    if (bk === undefined) throw new Error('no solution');
    v = (v ^ bk.v) >>> 0;
    x = (x ^ bk.x) >>> 0;
  }
  for (let bit = 0; bit < 32; bit++) if ((x >>> bit) & 1) b[w + (bit >> 3)] |= 1 << (bit & 7);
  if (fp(b) !== target) throw new Error('forge failed');
  return b;
}

import { silentLogger, startNode } from '@meshbus/core';
import { ClusterNode, issueLeafKey, leafIdentity } from '../../src/index.js';

/** A real leaf node with a key of `label`, under `hub`, once the hub holds it up. */
export async function keyedLeaf(secret: string, tracked: (t: TestNode) => TestNode, label: string, hub: TestNode, clusterOpts: Record<string, unknown> = {}): Promise<TestNode> {
  const identity = leafIdentity(issueLeafKey(secret, label));
  const n = await startNode({ port: 0, id: identity.id, nodeIdInClientIds: true, logger: silentLogger, name: label, pingInterval: 1000 });
  const c = await new ClusterNode(n, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, mode: 'leaf', seeds: [`127.0.0.1:${hub.cluster.port}`], leafKey: identity, ...clusterOpts }).start();
  const t = tracked({ node: n, cluster: c, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${c.port}` });
  await until(() => hub.cluster.peers().some((p) => p.id === n.id && p.state === 'up'), `leaf ${label} up`);
  return t;
}

export function groupMembers(t: TestNode, q = 'g'): number {
  let n = 0;
  t.node.table.forEach((s) => void (s.queue === q && n++));
  return n;
}

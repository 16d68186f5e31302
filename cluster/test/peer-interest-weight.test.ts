/**
 * A peer link's maxPeerInterest counts weight, as a client's subscription
 * limits do (SPEC 10.10, "How subscriptions are counted"). Before, each
 * entry counted 1 whatever its pattern: a peer announcing 32-token patterns
 * with 256-character queue names made the node hold ~9.5 KB per entry, some
 * 950 MB within the default 100,000.
 */
import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { silentLogger, startNode } from '@meshbus/core';
import { until, cleanups } from '@meshbus/testkit';
import { ClusterNode, type PeerInfo } from '../src/index.js';
import { fakePeer, stopMeshNode, type TestNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';
const cleanup = cleanups();

async function node(maxPeerInterest: number): Promise<TestNode> {
  const n = await startNode({ port: 0, logger: silentLogger, name: 'a' });
  const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, pingInterval: 5000, maxPeerInterest }).start();
  const t = { node: n, cluster, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${cluster.port}` };
  cleanup.push(() => stopMeshNode(t));
  return t;
}

/** 32 distinct 7-character tokens: weighs 6. */
const deep = (i: number): string => Array.from({ length: 32 }, (_, t) => `${i.toString(36)}${t.toString(36)}abcdef`.slice(0, 7)).join('.');
const peerWeight = (t: TestNode): number | undefined => (t.node.table as unknown as { weightByOwner?: () => Record<string, number> }).weightByOwner?.().peer;

describe('peer interest by weight', () => {
  it('a peer\'s deep entries are refused past maxPeerInterest by weight; a replacement by a heavier entry cannot pass it either', async () => {
    const a = await node(60);
    const me: PeerInfo = { id: 'deeddeeddeeddeed', name: 'deep', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };
    const g = await fakePeer(a, me, SECRET);
    cleanup.push(() => g.close());
    g.send({ type: FrameType.INTEREST, payload: encodeBody({ add: Array.from({ length: 30 }, (_, i) => [i + 1, deep(i + 1), null, 1]) }) });
    await g.waitFor((f) => f.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS');
    await until(() => a.node.table.byOwner().peer === 10, 'ten entries of weight 6 taken');
    expect(peerWeight(a)).toBe(60);
    // Withdraw one (room for 6), add six light ones, then replace a light one by a deep one: past the bound.
    g.send({ type: FrameType.INTEREST, payload: encodeBody({ del: [1], add: Array.from({ length: 6 }, (_, i) => [100 + i, `light.${i}`, null, 1]) }) });
    await until(() => a.node.table.byOwner().peer === 15, 'six light entries in');
    expect(peerWeight(a)).toBe(60);
    g.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[100, deep(500), null, 1]] }) });
    await until(() => g.got.filter((f) => f.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS').length === 2, 'the heavier replacement refused');
    // The entry it replaced is gone too (the peer no longer has it), and the bound holds.
    await until(() => a.node.table.byOwner().peer === 14, 'the replaced entry withdrawn');
    expect(peerWeight(a)).toBe(59);
  });
});

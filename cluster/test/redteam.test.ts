/**
 * Red-team variants against authenticated peers (they hold the cluster
 * secret, but a buggy or compromised node must not grow another one's memory
 * past its bounds).
 */
import { describe, expect, it } from 'vitest';
import { FrameType, codeFromNumber, decodeError, encodeBody } from '@meshbus/proto';
import { connect } from '@meshbus/sdk';
import { until, cleanups } from '@meshbus/testkit';
import type { RawClient } from '@meshbus/testkit';
import type { ClusterOptions, DedupWindow, PeerInfo } from '../src/index.js';
import { MAX_DEDUP_ORIGINS } from '../src/dedup-window.js';
import { fakePeer as authenticatedPeer, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';

const cleanup = cleanups();

async function node(opts: ClusterOptions = {}): Promise<TestNode> {
  const t = await startMeshNode({ secret: SECRET, pingInterval: 5000, redialMin: 20, redialMax: 100, ...opts }, 'a');
  cleanup.push(() => stopMeshNode(t));
  return t;
}

const me: PeerInfo = { id: 'ab12cd34ef56ab78', name: 'hostile-peer', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };

/** A fake peer that completes the handshake with the secret (the dialer's side, by hand). */
async function fakePeer(t: TestNode): Promise<RawClient> {
  const c = await authenticatedPeer(t, me, SECRET);
  cleanup.push(() => c.close());
  return c;
}

describe('interest announced by a peer', () => {
  it('is bounded per link (maxPeerInterest) and checked like a client SUB (queue name length); the link stays', async () => {
    const t = await node({ maxPeerInterest: 1000 });
    const base = t.node.table.size;
    const peer = await fakePeer(t);
    let id = 1;
    for (let frame = 0; frame < 5; frame++) {
      const add: Array<[number, string, string | null]> = [];
      for (let k = 0; k < 1000; k++, id++) add.push([id, `spam.${id}.${'x'.repeat(40)}`, null]);
      peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add }) });
    }
    // Queue names past 256 characters are refused like a client's SUB `q`.
    peer.send({ type: FrameType.INTEREST, payload: encodeBody({ del: [1], add: [[id + 1, 'ok.topic', 'q'.repeat(10_000)]] }) });
    await peer.flush();
    expect(t.node.table.size - base).toBeLessThanOrEqual(1000);
    const errors = peer.got.filter((g) => g.type === FrameType.ERROR).map((g) => codeFromNumber(decodeError(g.payload).code));
    expect(errors).toContain('MB_ERR_TOO_MANY_SUBSCRIPTIONS');
    expect(errors).toContain('MB_ERR_BAD_BODY');
    expect(t.cluster.link(me.id)?.state).toBe('up');
  });
});

describe('events forwarded by a peer', () => {
  it.each(['full', 'partial'] as const)('one stamped far in the future as another node\'s does not make this node drop that node\'s events (%s mesh)', async (mode) => {
    const t = await node({ mode });
    const other = await startMeshNode({ secret: SECRET, pingInterval: 5000, seeds: [t.peerAddr], mode }, 'b');
    cleanup.push(() => stopMeshNode(other));
    await until(() => t.cluster.link(other.node.id)?.state === 'up' && other.cluster.link(t.node.id)?.state === 'up', 'the mesh');
    const sub = await connect(t.url);
    cleanup.push(() => sub.close());
    const got: string[] = [];
    sub.subscribe('o', { callback: (m) => got.push(Buffer.from(m.data).toString()) });
    await sub.flush();
    await until(() => other.node.table.size > 0, 'the interest at b');
    const peer = await fakePeer(t);
    // A full-mesh peer (buggy or hostile) forwards an event stamped as b's, an hour and more ahead.
    peer.send({ type: FrameType.PUB, topic: 'o', payload: Buffer.from('forged'), origin: Buffer.from(other.node.id, 'hex'), seq: (Date.now() + 7200e3) * 1000, maxHops: 8 });
    await peer.flush();
    // A full mesh drops it (origin-rules.ts: a peer never relays a node this one is linked to); a partial mesh relays every origin.
    await until(() => (mode === 'full' ? t.cluster.badPeerEvents === 1 : got.includes('forged')), 'the forged event');
    const pub = await connect(other.url);
    cleanup.push(() => pub.close());
    for (let i = 0; i < 5; i++) pub.publish('o', String(i));
    await pub.flush();
    await until(() => got.length >= (mode === 'full' ? 5 : 6), 'b\'s events after it');
    expect(got).toEqual([...(mode === 'full' ? [] : ['forged']), '0', '1', '2', '3', '4']);
    expect(t.cluster.reorderedDropped + t.cluster.duplicatesDropped).toBe(0);
  });
});

describe('events under made-up origins (partial mesh)', () => {
  it('do not grow the duplicate filter past its bound', async () => {
    const t = await node({ mode: 'partial' });
    const peer = await fakePeer(t);
    const n = MAX_DEDUP_ORIGINS + 1000;
    for (let i = 0; i < n; i += 500) {
      const frames = [];
      for (let k = i; k < Math.min(n, i + 500); k++) {
        frames.push({ type: FrameType.PUB, topic: 'spray', payload: Buffer.from('x'), origin: Buffer.from(k.toString(16).padStart(16, 'a'), 'hex'), seq: 1, maxHops: 8 });
      }
      peer.send(...frames);
      await peer.flush();
    }
    const dedup = (t.cluster as unknown as { dedup: DedupWindow }).dedup;
    await until(() => t.node.stats.msgsIn >= n, 'every event read');
    expect(dedup.size).toBeLessThanOrEqual(MAX_DEDUP_ORIGINS);
    expect(t.cluster.link(me.id)?.state).toBe('up');
  });
});

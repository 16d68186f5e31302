import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { until, cleanups } from '@meshbus/testkit';
import type { PeerInfo } from '../src/index.js';
import { fakePeer, startMeshNode, stopMeshNode } from './mesh-helpers.js';

/**
 * A full-mesh node remembers, per address it dialed, which node answered
 * there (so it redials a seed or proxy when that node's link dies). Nodes
 * that come and go at new addresses (pods) each added an entry, kept for
 * ever: 6 nodes that joined and left, 6 entries. Now an address is
 * forgotten once the redialer gives it up, with the node gossip forgot. And
 * the nodes known (peers(), dial targets) are bounded at maxKnownPeers: a
 * partial mesh kept every node that ever dialed it (10 of 10 here).
 */

const SECRET = 'correct horse battery';
const cleanup = cleanups();

it('the addresses a node dialed do not grow with nodes that come and go at new addresses (was: one entry per address, for ever)', async () => {
  const a = await startMeshNode({ secret: SECRET, redialMin: 10, redialMax: 20, redialGiveUp: 2 }, 'a');
  cleanup.push(() => stopMeshNode(a));
  const dialed = (): number => (a.cluster as unknown as { dialedPeer: { size: number } }).dialedPeer.size;
  // A peer that tells A of each new node, which A then dials (a full mesh dials every node it hears of).
  const me: PeerInfo = { id: randomBytes(8).toString('hex'), name: 'teller', cluster: '127.0.0.1:1', client: '127.0.0.1:1' };
  const teller = await fakePeer(a, me, SECRET);
  cleanup.push(() => teller.close());
  for (let i = 0; i < 6; i++) {
    const b = await startMeshNode({ secret: SECRET }, `b${i}`);
    const info = { id: b.node.id, name: `b${i}`, cluster: b.peerAddr, client: b.url, mesh: 'full' };
    teller.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [info], links: [] }) });
    await teller.flush();
    await until(() => a.cluster.link(b.node.id)?.state === 'up', `A linked to b${i}`);
    // It leaves for good: A redials its address, gives it up, and forgets the node.
    await stopMeshNode(b);
    await until(() => !a.cluster.peers().some((p) => p.id === b.node.id), `b${i} forgotten`, 10_000);
  }
  expect(dialed()).toBe(0);
}, 60_000);

it('a partial mesh keeps at most maxKnownPeers nodes that linked and left (was: every one, listed down for ever)', async () => {
  const a = await startMeshNode({ secret: SECRET, mode: 'partial', maxKnownPeers: 4 }, 'a');
  cleanup.push(() => stopMeshNode(a));
  for (let i = 0; i < 10; i++) {
    const me: PeerInfo = { id: randomBytes(8).toString('hex'), name: `p${i}`, cluster: `127.0.0.1:${3000 + i}`, client: '127.0.0.1:9', mesh: 'partial' };
    const p = await fakePeer(a, me, SECRET);
    p.close();
    await until(() => !a.cluster.peers().some((s) => s.id === me.id && s.state === 'up'), `p${i} down`);
  }
  expect(a.cluster.peers().length).toBeLessThanOrEqual(4);
});

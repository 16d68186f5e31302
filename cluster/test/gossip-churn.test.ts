/**
 * What a node keeps of its peers' gossip is bounded by the peers linked now.
 * The links each peer gossiped (up to maxKnownPeers node ids) were kept per
 * node id for ever: every node that ever linked, and a restarted node comes
 * back under a new id, added an entry no view showed again (30 peers that
 * came and went: 30 entries). And a node gone for good (its address given
 * up by the redialer) stayed in peers() as 'down' for ever; at maxKnownPeers
 * of those, gossip learned no new node at all.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { until, cleanups } from '@meshbus/testkit';
import type { Gossip } from '../src/gossip.js';
import type { PeerInfo } from '../src/index.js';
import { freePort } from '@meshbus/core';
import { fakePeer, startMeshNode, stopMeshNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';
const cleanup = cleanups();

describe('gossip of peers that come and go', () => {
  it('forgets the links a peer gossiped once its link is down', async () => {
    const a = await startMeshNode({ secret: SECRET, pingInterval: 5000 }, 'a');
    cleanup.push(() => stopMeshNode(a));
    const gossip = (a.cluster as unknown as { gossip: Gossip }).gossip;
    const ids = (n: number): string[] => Array.from({ length: n }, () => randomBytes(8).toString('hex'));
    for (let i = 0; i < 30; i++) {
      const me: PeerInfo = { id: randomBytes(8).toString('hex'), name: `p${i}`, cluster: `127.0.0.1:${2000 + i}`, client: '127.0.0.1:9' };
      const p = await fakePeer(a, me, SECRET);
      p.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [], links: ids(20) }) });
      await p.flush();
      await until(() => a.cluster.links().some((l) => l.from === me.id), 'its links shown');
      p.close();
      await until(() => !a.cluster.peers().some((s) => s.id === me.id && s.state === 'up'), 'its link down');
    }
    expect(gossip.remembered).toBe(0);
    expect(a.cluster.links()).toEqual([]);
  });

  it('forgets a node whose address the redialer gave up: not listed as down for ever', async () => {
    const a = await startMeshNode({ secret: SECRET, pingInterval: 5000, redialMin: 10, redialMax: 20, redialGiveUp: 3 }, 'a');
    cleanup.push(() => stopMeshNode(a));
    // It advertises an address where nothing listens: once its link is down, redials there fail.
    const me: PeerInfo = { id: randomBytes(8).toString('hex'), name: 'gone', cluster: `127.0.0.1:${await freePort()}`, client: '127.0.0.1:9' };
    const p = await fakePeer(a, me, SECRET);
    p.close();
    await until(() => !a.cluster.peers().some((s) => s.id === me.id && s.state === 'up'), 'its link down');
    await until(() => !a.cluster.peers().some((s) => s.id === me.id), 'forgotten once its address is given up', 10_000);
  });

  // A peer's gossip can be older than what this node knows: the peer still linked to the gone node (its close
  // not seen yet) names it after this node forgot it. Before, it was learned again, never dialed (its address
  // given up) and so never given up again: listed 'down' for ever (a flake of cli-workers-ports' restart test).
  it.each(['redials failed', 'forgetAddress'] as const)('a node gone (%s) is not learned again from stale gossip', async (how) => {
    const a = await startMeshNode({ secret: SECRET, pingInterval: 5000, redialMin: 10, redialMax: 20, redialGiveUp: 3 }, 'a');
    cleanup.push(() => stopMeshNode(a));
    const gone: PeerInfo = { id: randomBytes(8).toString('hex'), name: 'gone', cluster: `127.0.0.1:${await freePort()}`, client: '127.0.0.1:9' };
    const g = await fakePeer(a, gone, SECRET);
    if (how === 'forgetAddress') a.cluster.forgetAddress(gone.cluster);
    g.close();
    await until(() => !a.cluster.peers().some((s) => s.id === gone.id), 'the gone node forgotten', 10_000);
    const late: PeerInfo = { id: randomBytes(8).toString('hex'), name: 'late', cluster: `127.0.0.1:${await freePort()}`, client: '127.0.0.1:9' };
    const p = await fakePeer(a, late, SECRET);
    cleanup.push(() => p.close());
    p.send({ type: FrameType.PEERS, payload: encodeBody({ from: late.id, peers: [gone], links: [gone.id] }) });
    await p.flush();
    await until(() => a.cluster.links().some((l) => l.from === late.id), 'the late gossip read');
    expect(a.cluster.peers().filter((s) => s.id === gone.id)).toEqual([]);
  });
});

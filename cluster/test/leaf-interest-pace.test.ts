/**
 * A leaf's interest changes are paced by its hub (interest-pacing.ts,
 * ClusterOptions.leafInterestRate). The twenty-fourth session's review left
 * it open: one INTEREST replacing 50,000 entries held a hub's event loop
 * ~620 ms, as often as the leaf sent one, and leaves are now the least
 * trusted nodes (leaf keys). Past its pace a leaf's input waits: its
 * interest is applied late, never dropped, its link is not found stale
 * meanwhile, and the hub serves its clients.
 */
import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { until } from '@meshbus/testkit';
import { meshKit, rawPeer } from './mesh-helpers.js';

const SECRET = 'leaf-pace-secret';
const { node, cli } = meshKit();

describe('leaf interest pace', () => {
  it('a leaf replacing its interest again and again waits past its pace; the last snapshot is applied whole, events flow', async () => {
    // 10,000 changes a second past a burst of 10,000 (half of maxPeerInterest).
    const hub = await node({ secret: SECRET, leafInterestRate: 10_000, maxPeerInterest: 20_000, pingInterval: 200 }, 'hub');
    const id = '00000000000000c1';
    const leaf = await rawPeer(hub.cluster.port, { id, name: 'leaf', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true } as never, SECRET);
    await until(() => hub.cluster.peers().some((p) => p.id === id && p.state === 'up'), 'leaf up');
    const owned = (prefix: string): number => {
      let n = 0;
      hub.node.table.forEach((s) => void (s.owner.kind === 'leaf' && s.pattern.startsWith(prefix) && n++));
      return n;
    };
    // 10 snapshots of 2,000 entries: 2,000 + 9 × 4,000 = 38,000 changes, 28,000 past the burst. A hold comes after the
    // frame that went past the pace, and frames read in one chunk (up to three of these) are applied together, so the
    // last one is applied at least (38,000 − 3 × 4,000 − 10,000) / 10,000 = 1.6 s after the first (unpaced: ~0.3 s).
    const t0 = performance.now();
    for (let r = 0; r < 10; r++) {
      leaf.send({ type: FrameType.INTEREST, payload: encodeBody({ snap: true, add: Array.from({ length: 2000 }, (_, i) => [i + 1, `r${r}.${i}`, null, 1]) }) });
    }
    // The hub serves its own clients meanwhile.
    const c = await cli(hub);
    await c.flush();
    await until(() => owned('r9.') === 2000, 'the last snapshot applied', 20_000);
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(1500);
    expect(hub.node.table.size).toBe(2000);
    // The link lived through the holds (its pings unread meanwhile are of the hub's own making).
    expect(hub.cluster.peers().find((p) => p.id === id)?.state).toBe('up');
    c.publish('r9.1999', 'to-the-leaf');
    await leaf.waitFor((g) => g.type === FrameType.PUB && g.topic === 'r9.1999', 5000);
    leaf.close();
  });

  it('a leaf within its pace is not held: its snapshot at link-up is applied at once', async () => {
    const hub = await node({ secret: SECRET, leafInterestRate: 100, maxPeerInterest: 20_000 }, 'hub');
    const id = '00000000000000c2';
    const leaf = await rawPeer(hub.cluster.port, { id, name: 'leaf', cluster: '127.0.0.1:1', client: '127.0.0.1:1', leaf: true } as never, SECRET);
    await until(() => hub.cluster.peers().some((p) => p.id === id && p.state === 'up'), 'leaf up');
    // 5,000 entries: within the burst (half of maxPeerInterest), whatever the rate.
    leaf.send({ type: FrameType.INTEREST, payload: encodeBody({ snap: true, add: Array.from({ length: 5000 }, (_, i) => [i + 1, `s.${i}`, null, 1]) }) });
    await until(() => hub.node.table.size === 5000, 'the snapshot applied', 5000);
    // Within the burst still: a later change is applied without a wait.
    leaf.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[9999, 'later.one', null, 1]] }) });
    await until(() => hub.node.table.size === 5001, 'the later change applied', 5000);
    leaf.close();
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, floodPublisher, until } from '@meshbus/testkit';
import { fullyMeshed, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

/** Flow control and SUB `max` across a peer link (SPEC §10.3, §10.6). */

const nodes: TestNode[] = [];
const clients: RawClient[] = [];
async function pair(): Promise<[TestNode, TestNode]> {
  const a = await startMeshNode({}, 'a');
  nodes.push(a);
  const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b');
  nodes.push(b);
  await until(() => fullyMeshed([a, b]), 'link up');
  return [a, b];
}
async function raw(t: TestNode): Promise<RawClient> {
  const c = await RawClient.connect(t.node.port);
  clients.push(c);
  return c;
}
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const t of nodes.splice(0)) await stopMeshNode(t).catch(() => {});
});

describe('across a peer link', () => {
  it("stuck subscribers on the other node, one after another, hold the link at most one maxStall in every 11; the link's pauses are counted", async () => {
    // Replayed from nats-server #2631: every topic on the link waited behind each stuck reader in turn (1 ms → 1.9 s p50).
    const a = await startMeshNode({}, 'a');
    nodes.push(a);
    const b = await startMeshNode({ seeds: [a.peerAddr] }, 'b', { maxStall: 1000, maxPending: 4 * 1024 * 1024 });
    nodes.push(b);
    await until(() => fullyMeshed([a, b]), 'link up');
    const pub = await raw(a);
    const p = floodPublisher(pub, 'feed', 4096, 400_000);
    const t0 = Date.now();
    try {
      for (let k = 1; k <= 4; k++) {
        const s = await raw(b);
        s.sub('feed', 1);
        await s.flush();
        await until(() => remoteInterest(a) === 1, 'interest at a');
        s.pauseReading();
        // Closed as a slow consumer, or (its pings unanswered) as stale.
        await until(() => b.node.stats.slowConsumers + b.node.stats.staleConnections >= k, `stuck subscriber ${k} closed`, 20_000);
      }
    } finally {
      await p.stop();
    }
    // Old code: a link's pauses were not counted (0), and each stuck subscriber could hold the link a full maxStall.
    expect(b.node.stats.flowPauses).toBeGreaterThanOrEqual(1);
    expect(b.node.stats.flowStalls).toBeLessThanOrEqual(Math.ceil((Date.now() - t0) / 11_000));
  }, 120_000);

  it('events of the maximum payload flow to a remote subscriber without the publisher ever hitting maxStall', async () => {
    const [a, b] = await pair();
    const sub = await raw(b);
    sub.sub('big', 1);
    await sub.flush();
    await until(() => remoteInterest(a) === 1, 'interest at a');
    const pub = await raw(a);
    const total = 24; // 24 MiB: past the link's 4 MiB high-water mark many times over
    for (let i = 0; i < total; i++) pub.pub('big', new Uint8Array(1048576).fill(i));
    await pub.flush(30_000);
    await until(() => sub.events('big').length === total, 'all events at b', 30_000);
    expect(a.node.stats.flowStalls).toBe(0);
    expect(a.node.stats.slowConsumers + b.node.stats.slowConsumers).toBe(0);
  });

  it("a queue member with max 1 on the other node gets 1 event, then its interest leaves the peer", async () => {
    const [a, b] = await pair();
    const member = await raw(b);
    member.sub('jobs', 1, { q: 'g', max: 1 });
    await member.flush();
    await until(() => remoteInterest(a) === 1, 'interest at a');
    const pub = await raw(a);
    pub.pub('jobs', 'first');
    await member.waitFor((g) => g.topic === 'jobs');
    // The subscription ended at b; a hears it like an UNSUB and stops routing there.
    await until(() => remoteInterest(a) === 0, 'interest gone at a');
    const other = await raw(a);
    other.sub('jobs', 1, { q: 'g' });
    await other.flush();
    for (let i = 0; i < 10; i++) pub.pub('jobs', String(i));
    await pub.flush();
    await until(() => other.events('jobs').length === 10, 'the rest at the local member');
    await member.flush();
    expect(member.events('jobs')).toHaveLength(1);
  });
});

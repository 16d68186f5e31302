import { expect, it } from 'vitest';
import { connect, type Client } from '@meshbus/sdk';
import { nodeKit, until, type NodeProcess } from '@meshbus/testkit';

const fx = nodeKit();
const spawnNode = (args: Parameters<typeof fx.spawnNode>[0]): Promise<NodeProcess> => fx.spawnNode(args, 'SIGKILL');

it('keeps routing when a node is killed with SIGKILL; its subscribers fail over and resume', async () => {
  const a = await spawnNode({});
  const seeds = [`127.0.0.1:${a.clusterPort}`];
  const b = await spawnNode({ seeds });
  const c = await spawnNode({ seeds });

  // Wait until C is linked to both others (its WELCOME then lists them).
  for (let i = 0; ; i++) {
    const probe = await connect(c.url, { reconnect: false });
    const peers = probe.info?.peers.length ?? 0;
    await probe.close();
    if (peers === 2) break;
    if (i > 200) throw new Error('C never linked to its two peers');
    await new Promise((r) => setTimeout(r, 50));
  }
  // The subscriber starts on C and learns the other nodes from WELCOME.
  const sub = await connect(c.url, { reconnectBackoff: { base: 50, max: 300 } });
  fx.track(sub);
  expect(sub.info!.peers).toHaveLength(2);
  const got: number[] = [];
  sub.subscribe('ticks', { callback: (m) => got.push(Number(Buffer.from(m.data).toString())) });
  await sub.flush();

  const pub = await connect(a.url);
  fx.track(pub);
  let seq = 0;
  const timer = setInterval(() => pub.publish('ticks', Buffer.from(String(seq++))), 5);
  try {
    await until(() => got.length > 20, 'events flowing A -> C', 15_000);
    // In order and without duplicates while C lives.
    expect(got).toEqual([...got].sort((x, y) => x - y));
    expect(new Set(got).size).toBe(got.length);

    c.child.kill('SIGKILL');
    const killedAt = Date.now();
    const seqAtKill = seq;
    await until(() => got.some((n) => n > seqAtKill + 20), 'events again after failover', 15_000);
    const recovery = Date.now() - killedAt;
    console.log(`failover: events resumed ${recovery} ms after SIGKILL of the subscriber node`);
    expect(recovery).toBeLessThan(15_000);
    expect(sub.info!.node).not.toBe(undefined);
    // Still no duplicates: at-most-once, events during the failover gap may be lost.
    expect(new Set(got).size).toBe(got.length);

    // A restarted node rejoins the mesh and its interest is learned again.
    const c2 = await spawnNode({ port: c.port, clusterPort: c.clusterPort, seeds });
    const sub2 = await connect(c2.url);
    fx.track(sub2);
    const got2: string[] = [];
    sub2.subscribe('ticks', { callback: (m) => got2.push(Buffer.from(m.data).toString()) });
    await sub2.flush();
    await until(() => got2.length > 10, 'events at the restarted node', 15_000);
  } finally {
    clearInterval(timer);
  }
}, 60_000);

import { afterEach, describe, expect, it } from 'vitest';
import type { Client, Msg } from '@meshbus/sdk';
import { client, fullyMeshed, remoteInterest, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';
import { until } from '@meshbus/testkit';

/**
 * SUB `max` on a queue member across nodes (SPEC 10.3): the publisher's node
 * keeps routing to a member on another node until it hears that the member
 * ended. What it sent meanwhile never reaches the ended member (as with NATS,
 * whose server enforces auto-unsubscribe): it goes to another member of the
 * group, or is counted as dropped — never lost without a count.
 */

const nodes: TestNode[] = [];
const clients: Client[] = [];
async function mesh(n: number): Promise<TestNode[]> {
  const first = await startMeshNode({}, 'n0');
  nodes.push(first);
  const out = [first];
  for (let i = 1; i < n; i++) {
    const t = await startMeshNode({ seeds: [first.peerAddr] }, `n${i}`);
    nodes.push(t);
    out.push(t);
  }
  await until(() => fullyMeshed(out), 'full mesh');
  return out;
}
async function cli(t: TestNode): Promise<Client> {
  const c = await client(t);
  clients.push(c);
  return c;
}
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0)) await stopMeshNode(t).catch(() => {});
});

function member(c: Client, opts: { max?: number } = {}): string[] {
  const got: string[] = [];
  c.subscribe('job', { queue: 'g', ...opts, callback: (m: Msg) => got.push(m.string()) });
  return got;
}

describe('queue-group max across nodes', () => {
  it('2 nodes: the only member (max 5) gets exactly 5; every event the publisher node sent before it heard is counted, none lost silently', async () => {
    const [a, b] = await mesh(2);
    const ma = await cli(a!);
    const gotA = member(ma, { max: 5 });
    await ma.flush();
    await until(() => remoteInterest(b!) === 1, 'group interest at B');
    const pub = await cli(b!);
    const total = 200;
    for (let i = 0; i < total; i++) pub.publish('job', String(i));
    await pub.flush();
    // Old code: A discarded what arrived after its member ended, without a count.
    await until(() => a!.node.stats.dropped.noQueueMember + b!.node.stats.noInterest === total - 5, 'every event delivered or counted');
    await ma.flush();
    expect(gotA).toHaveLength(5);
    expect(ma.stats().dropped).toBe(0); // nothing past max reached the client
    expect(a!.node.stats.dropped.noQueueMember).toBeGreaterThan(0); // the burst was in flight when the member ended
  });

  it('2 nodes, a plain subscription with max 5: it gets exactly 5; what the publisher node sent before it heard is counted as no interest', async () => {
    const [a, b] = await mesh(2);
    const ma = await cli(a!);
    const got: string[] = [];
    ma.subscribe('plain', { max: 5, callback: (m: Msg) => got.push(m.string()) });
    await ma.flush();
    await until(() => remoteInterest(b!) === 1, 'interest at B');
    const pub = await cli(b!);
    const total = 200;
    for (let i = 0; i < total; i++) pub.publish('plain', String(i));
    await pub.flush();
    // Old code: A counted nothing for the events that arrived after the subscription ended.
    await until(() => a!.node.stats.noInterest + b!.node.stats.noInterest === total - 5, 'every event delivered or counted');
    await ma.flush();
    expect(got).toHaveLength(5);
    expect(ma.stats().dropped).toBe(0);
  });

  it('3 nodes: what was in flight to a member that reached max goes to the member on the third node, none lost', async () => {
    const [a, b, c] = await mesh(3);
    const ma = await cli(a!);
    const mc = await cli(c!);
    const gotA = member(ma, { max: 1 });
    const gotC = member(mc);
    await ma.flush();
    await mc.flush();
    await until(() => remoteInterest(b!) === 2, 'group interest at B');
    const pub = await cli(b!);
    const total = 200;
    for (let i = 0; i < total; i++) pub.publish('job', String(i));
    await pub.flush();
    // Old code: the events B had sent to A after its member's first one were lost.
    await until(() => gotA.length + gotC.length === total, 'every event delivered');
    await ma.flush();
    await mc.flush();
    expect(gotA).toHaveLength(1);
    expect(new Set([...gotA, ...gotC]).size).toBe(total);
    expect(ma.stats().dropped + mc.stats().dropped).toBe(0);
    expect(a!.node.stats.dropped.noQueueMember + b!.node.stats.noInterest + c!.node.stats.dropped.noQueueMember).toBe(0);
  });
});

import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startNode, silentLogger } from '@meshbus/core';
import { connect, type Client, type Msg, type Status } from '@meshbus/sdk';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { stopStartedRedis, testRedis, type TestRedis, until } from '@meshbus/testkit';
import { ClusterNode } from '../src/index.js';
import { fullyMeshed, type TestNode } from './mesh-helpers.js';

let redis: TestRedis | undefined;
const nodes: TestNode[] = [];
const clients: Client[] = [];

beforeEach(async ({ skip }) => {
  redis ??= await testRedis({ skip });
});
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0)) {
    await t.cluster.stop().catch(() => {});
    await t.node.close().catch(() => {});
  }
});
afterAll(async () => {
  await redis?.cleanup();
  await stopStartedRedis();
});

/** Two nodes meshed, sharing one Redis (same key prefix). */
async function pair(extra: Record<string, unknown> = {}): Promise<[TestNode, TestNode]> {
  const prefix = `${redis!.prefix}${Math.random().toString(36).slice(2, 8)}:`;
  const durable = { redis: redis!.url, prefix, topics: [{ pattern: 'feed.>', history: { size: 10_000 } }], ...extra };
  const out: TestNode[] = [];
  for (let i = 0; i < 2; i++) {
    const node = await startNode({ port: 0, logger: silentLogger, name: `n${i}`, pingInterval: 1000, durable });
    const cluster = await new ClusterNode(node, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, seeds: out.map((t) => t.peerAddr) }).start();
    const t = { node, cluster, url: `127.0.0.1:${node.port}`, peerAddr: `127.0.0.1:${cluster.port}` };
    nodes.push(t);
    out.push(t);
  }
  await until(() => fullyMeshed(out), 'mesh');
  return [out[0]!, out[1]!];
}

async function cli(servers: string | string[], opts: Record<string, unknown> = {}): Promise<Client> {
  const c = await connect(servers, { reconnectBackoff: { base: 20, max: 100 }, ...opts });
  clients.push(c);
  return c;
}

const text = (m: Msg): string => Buffer.from(m.data).toString();

describe('durability across the mesh', () => {
  it('a subscriber whose node dies resumes on the other node: every event once, in order', async () => {
    const [a, b] = await pair();
    const sub = await cli([a.url, b.url], { ignoreClusterPeers: false });
    expect(sub.info?.node).toBe(a.node.id);
    const got: string[] = [];
    const recoveries: Array<Extract<Status, { type: 'recovery' }>> = [];
    sub.on('status', (s) => {
      if (s.type === 'recovery') recoveries.push(s);
    });
    const s = sub.subscribe('feed.main', { recover: true, callback: (m) => void got.push(text(m)) });
    await until(() => recoveries.length === 1, 'subscribed');
    const pub = await cli(b.url);
    const N = 400;
    for (let i = 1; i <= N; i++) {
      const acked = pub.publish('feed.main', String(i), { ack: true });
      if (i === 150) {
        await acked;
        // Node A goes away mid-stream; the client fails over to B and resumes there from its position.
        await a.cluster.stop();
        await a.node.close();
      }
      if (i % 25 === 0) await acked;
    }
    await until(() => got.length >= N, `all ${N} events (got ${got.length})`, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(sub.info?.node).toBe(b.node.id);
    expect(got).toEqual(Array.from({ length: N }, (_, i) => String(i + 1)));
    expect(recoveries.length).toBe(2);
    expect(recoveries[1]!.recovered).toBe(true);
    expect(s.position?.offset).toBe(N);
  });

  it('durable queue subscribers on two nodes: each job processed exactly once', async () => {
    const [a, b] = await pair();
    const seen = new Map<string, number>();
    const perNode = [0, 0];
    for (const [i, t] of [a, b].entries()) {
      for (let k = 0; k < 2; k++) {
        const c = await cli(t.url);
        c.subscribe('jobs.>', {
          queue: 'workers',
          durable: true,
          callback: async (m) => {
            seen.set(text(m), (seen.get(text(m)) ?? 0) + 1);
            perNode[i]!++;
            await new Promise((r) => setTimeout(r, 2));
          },
        });
      }
    }
    for (const t of [a, b]) await until(() => (t.node.durability!.matcher.forTopic('jobs.x')?.queues.length ?? 0) === 1, 'queue known');
    const pa = await cli(a.url);
    const pb = await cli(b.url);
    const N = 200;
    for (let i = 0; i < N; i++) await (i % 2 === 0 ? pa : pb).publish(`jobs.${i % 3}`, `job${i}`, { ack: true });
    await until(() => seen.size === N, `all jobs (got ${seen.size})`, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(perNode[0]! + perNode[1]!).toBe(N);
    expect(perNode[0]).toBeGreaterThan(0);
    expect(perNode[1]).toBeGreaterThan(0);
  });
});

describe('positions from a peer are checked against the store (issue #13)', () => {
  it('a peer event with an offset above the store or a foreign epoch never reaches a resuming subscriber, nor moves its position', async () => {
    const [a, b] = await pair();
    const sub = await cli(b.url);
    const got: string[] = [];
    const s = sub.subscribe('feed.x', { recover: true, callback: (m) => void got.push(text(m)) });
    await until(() => s.recovered !== undefined, 'SUB ack');
    const pub = await cli(b.url);
    const p1 = (await pub.publish('feed.x', 'e1', { ack: true }))!;
    await until(() => got.length === 1, 'e1');
    // A buggy or compromised peer: well-formed positions the store contradicts.
    let seq = Date.now() * 4000;
    const forge = (payload: string, epoch: string, offset: number): Uint8Array =>
      encodeFrame({ type: FrameType.PUB, topic: 'feed.x', seq: ++seq, ext: { position: { epoch, offset } }, payload: Buffer.from(payload) });
    const before = b.node.stats.msgsIn;
    const link = a.cluster.link(b.node.id)!;
    link.sendRaw(forge('forged-offset', p1.epoch, 999_999));
    link.sendRaw(forge('forged-epoch', 'ffffffffffffffff', 2));
    await until(() => b.node.stats.msgsIn >= before + 2, 'forged events received');
    for (let i = 2; i <= 4; i++) await pub.publish('feed.x', `e${i}`, { ack: true });
    await until(() => got.length >= 4, 'the acknowledged events');
    await sub.flush();
    expect(got).toEqual(['e1', 'e2', 'e3', 'e4']);
    expect(s.position).toEqual({ epoch: p1.epoch, offset: p1.offset + 3 });
  });
});

import { describe, expect, it } from 'vitest';
import type { Client, Msg } from '@meshbus/sdk';
import { freePort, silentLogger, startNode, type Logger } from '@meshbus/core';
import { ClusterNode, type ClusterOptions } from '../src/index.js';
import { collect, fullyMeshed, meshKit, stopMeshNode, type TestNode } from './mesh-helpers.js';
import { until } from '@meshbus/testkit';

/**
 * Issue #18: gateways. Regions are full meshes; every node keeps one gateway
 * link to each other region and sends over it the events that enter the mesh
 * at that node and that the region wants. An event crosses at most one
 * gateway, so regions joined pairwise never see duplicates or loops. Real
 * nodes and SDK clients over loopback.
 */
const { nodes, tracked, cli } = meshKit();

async function start(opts: ClusterOptions, name: string, logger: Logger = silentLogger): Promise<TestNode> {
  const node = await startNode({ port: 0, logger, name, pingInterval: 1000 });
  const cluster = await new ClusterNode(node, { pingInterval: 200, redialMin: 50, redialMax: 500, ...opts }).start();
  return tracked({ node, cluster, url: `127.0.0.1:${node.port}`, peerAddr: `127.0.0.1:${cluster.port}` });
}
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));
function gatewaysOf(t: TestNode): string[] {
  return t.cluster.peers().filter((p) => p.gateway !== undefined && p.state === 'up').map((p) => p.gateway!);
}
/** Subscriptions `t` holds for other regions (owned by its outbound gateway links). */
function farInterest(t: TestNode): number {
  let n = 0;
  t.node.table.forEach((s) => {
    if (s.owner.kind === 'gateway') n++;
  });
  return n;
}

type Regions = Record<string, TestNode[]>;

/** Regions of `sizes[r]` nodes each, every node with gateways to every other region. */
async function regions(sizes: Record<string, number>): Promise<Regions> {
  const ports: Record<string, number[]> = {};
  for (const [r, n] of Object.entries(sizes)) ports[r] = await Promise.all(Array.from({ length: n }, () => freePort()));
  const addrs = (r: string): string[] => ports[r]!.map((p) => `127.0.0.1:${p}`);
  const out: Regions = {};
  for (const [r, n] of Object.entries(sizes)) {
    out[r] = [];
    for (let i = 0; i < n; i++) {
      const gateways: Record<string, string[]> = {};
      // Each node starts at a different address of the other region (spread, and failover order).
      for (const other of Object.keys(sizes)) if (other !== r) gateways[other] = [...addrs(other).slice(i % sizes[other]!), ...addrs(other).slice(0, i % sizes[other]!)];
      out[r].push(await start({ port: ports[r]![i]!, region: r, seeds: i > 0 ? [addrs(r)[0]!] : [], gateways }, `${r}-${i}`));
    }
  }
  const all = Object.values(out).flat();
  await until(() => Object.values(out).every((ns) => fullyMeshed(ns)), 'each region to mesh');
  await until(() => all.every((t) => gatewaysOf(t).filter((g) => g !== t.cluster.options.region).length >= Object.keys(sizes).length - 1), 'every node to link to every other region');
  return out;
}

describe('gateways', () => {
  it('deliver every event once to every subscriber in three regions joined pairwise, in order per publisher', async () => {
    const r = await regions({ eu: 2, us: 2, ap: 1 });
    const subs = [r.eu![1]!, r.us![0]!, r.us![1]!, r.ap![0]!];
    const gots: string[][] = [];
    for (const t of subs) {
      const c = await cli(t);
      gots.push(collect(c, 'x.>'));
      await c.flush();
    }
    const pubs = [r.eu![0]!, r.us![1]!, r.ap![0]!];
    // Each publisher's region must know every other region's interest (two others at least).
    await until(() => pubs.every((t) => farInterest(t) >= 2), 'interest across the gateways');
    for (const [k, t] of pubs.entries()) {
      const c = await cli(t);
      for (let i = 0; i < 100; i++) c.publish(`x.${k}`, `${k}:${i}`);
      await c.flush();
    }
    for (const got of gots) await until(() => got.length >= 300, 'every event everywhere');
    await settle();
    for (const got of gots) {
      expect(got).toHaveLength(300);
      for (const k of [0, 1, 2]) expect(got.filter((g) => g.startsWith(`${k}:`))).toEqual(Array.from({ length: 100 }, (_, i) => `${k}:${i}`));
    }
  });

  it('send only what another region wants, and answer requests across regions', async () => {
    const r = await regions({ eu: 2, us: 2 });
    const [e0, e1] = r.eu!;
    const [u0, u1] = r.us!;
    const responder = await cli(u1!);
    responder.subscribe('svc.where', { callback: (m: Msg) => m.respond('us') });
    await responder.flush();
    await until(() => farInterest(e0!) >= 1 && farInterest(e1!) >= 1, 'the responder\'s interest in eu');
    const requester = await cli(e0!);
    // The reply's inbox interest reaches us through the gateway; retry until it has.
    let answer = '';
    for (let i = 0; i < 50 && answer !== 'us'; i++) answer = await requester.request('svc.where', '', { timeout: 300 }).then((m) => Buffer.from(m.data).toString(), () => '');
    expect(answer).toBe('us');

    // Events no one in us wants never cross: count what e0's gateway link to us carried.
    const out = (): number => e0!.cluster.peers().find((p) => p.gateway === 'us')!.msgsOut;
    const before = out();
    const pub = await cli(e0!);
    for (let i = 0; i < 50; i++) pub.publish('eu.only', 'x');
    pub.publish('svc.where', 'y');
    await pub.flush();
    await until(() => out() === before + 1, 'the one wanted event to cross');
    await settle();
    expect(out()).toBe(before + 1);
    expect(u0!.node.stats.msgsIn + u1!.node.stats.msgsIn).toBeGreaterThan(0);
  });

  it('give queue-group events to the region\'s own members first, then to another region\'s', async () => {
    const r = await regions({ eu: 2, us: 1 });
    const [e0, e1] = r.eu!;
    const [u0] = r.us!;
    const euMember = await cli(e1!);
    const usMember = await cli(u0!);
    const gotEu = collect(euMember, 'jobs.*', { queue: 'w' });
    const gotUs = collect(usMember, 'jobs.*', { queue: 'w' });
    await euMember.flush();
    await usMember.flush();
    await until(() => farInterest(e0!) >= 1 && farInterest(u0!) >= 1, 'group interest across regions');
    const pub = await cli(e0!);
    for (let i = 0; i < 60; i++) pub.publish('jobs.a', String(i));
    await pub.flush();
    await until(() => gotEu.length + gotUs.length >= 60, 'every job');
    await settle();
    expect(gotEu).toHaveLength(60);
    expect(gotUs).toHaveLength(0);

    // Without a member in eu, the jobs go to us.
    await euMember.close();
    await until(() => {
      let n = 0;
      e0!.node.table.forEach((s) => {
        if (s.queue === 'w' && s.owner.kind === 'peer') n++;
      });
      return n === 0;
    }, 'the eu member to be gone');
    for (let i = 60; i < 90; i++) pub.publish('jobs.a', String(i));
    await pub.flush();
    await until(() => gotUs.length >= 30, 'jobs in us');
    await settle();
    expect(gotUs).toEqual(Array.from({ length: 30 }, (_, i) => String(60 + i)));
  });

  it('fail over to another node of the region when the gateway node dies', async () => {
    const r = await regions({ eu: 1, us: 2 });
    const [e0] = r.eu!;
    // e0's outbound gateway link goes to one us node (the victim); the subscriber is on the other.
    const linked = e0!.cluster.peers().find((p) => p.gateway === 'us' && p.state === 'up' && r.us!.some((t) => t.node.id === p.id))!;
    const victim = r.us!.find((t) => t.node.id === linked.id)!;
    const subNode = r.us!.find((t) => t !== victim)!;
    const sub = await cli(subNode);
    const got = collect(sub, 'tick');
    await sub.flush();
    await until(() => farInterest(e0!) === 1, 'the subscriber\'s interest at e0');
    const pub = await cli(e0!);
    let i = 0;
    const send = async (n: number): Promise<void> => {
      for (const end = i + n; i < end; ) pub.publish('tick', String(i++));
      await pub.flush();
    };
    await send(30);
    // Through the victim: e0 → victim (gateway) → subscriber's node (peer).
    await until(() => got.length === 30, 'events before');
    await stopMeshNode(victim);
    nodes.splice(nodes.indexOf(victim), 1);
    await until(() => e0!.cluster.peers().some((p) => p.gateway === 'us' && p.state === 'up' && p.id === subNode.node.id), 'e0 to dial the other us node', 15_000);
    await until(() => farInterest(e0!) === 1, 'the subscriber\'s interest again');
    await send(30);
    await until(() => got.length >= 60, 'events after the failover', 15_000);
    await settle();
    expect(got).toEqual(Array.from({ length: 60 }, (_, k) => String(k)));
  });
});

describe('region topology errors', () => {
  function capture(): { logger: Logger; lines: string[] } {
    const lines: string[] = [];
    const put = (o: object, msg?: string): void => void lines.push(`${msg ?? ''} ${JSON.stringify(o)}`);
    return { logger: { ...silentLogger, warn: put, error: put }, lines };
  }

  it('refuse, with MB_ERR_TOPOLOGY and a log line, a peer link between regions and a gateway that answers for the wrong region', async () => {
    const euLog = capture();
    const eu = await start({ port: 0, region: 'eu' }, 'eu-0', euLog.logger);
    // Seeds into another region would merge the meshes.
    const usLog = capture();
    await start({ port: 0, region: 'us', seeds: [eu.peerAddr] }, 'us-0', usLog.logger);
    await until(() => euLog.lines.some((l) => l.includes('a peer link between regions')), 'eu to refuse the cross-region peer link');
    await until(() => usLog.lines.some((l) => l.includes('MB_ERR_TOPOLOGY')), 'us to log the refusal');
    expect(eu.cluster.peers().filter((p) => p.state === 'up')).toEqual([]);

    // A gateway address of region ap that answers as region eu.
    const apLog = capture();
    const ap = await start({ port: 0, region: 'ap', gateways: { ap2: [eu.peerAddr] } }, 'ap-0', apLog.logger);
    await until(() => apLog.lines.some((l) => l.includes('is a gateway address of region ap2, but the node there is in region eu')), 'ap to refuse the wrong region');
    expect(ap.cluster.peers().filter((p) => p.state === 'up')).toEqual([]);
  });

  it('check gateway settings before anything starts', async () => {
    const node = await startNode({ port: 0, logger: silentLogger });
    try {
      expect(() => new ClusterNode(node, { gateways: { us: ['127.0.0.1:1'] } })).toThrow(/region/);
      expect(() => new ClusterNode(node, { region: 'eu', gateways: { eu: ['127.0.0.1:1'] } })).toThrow(/own/);
      expect(() => new ClusterNode(node, { region: 'eu', mode: 'partial', gateways: { us: ['127.0.0.1:1'] } })).toThrow(/full/);
      expect(() => new ClusterNode(node, { region: 'e u' })).toThrow(/region/);
    } finally {
      await node.close();
    }
  });
});

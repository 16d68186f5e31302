import { afterEach, describe, expect, it } from 'vitest';
import type { Client, Msg } from '@meshbus/sdk';
import { silentLogger, startNode, type Logger } from '@meshbus/core';
import { ClusterNode, type ClusterOptions } from '../src/index.js';
import { client, collect, fullyMeshed, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';
import { until } from '@meshbus/testkit';

/**
 * Issue #18: leaf nodes. A leaf links to one hub of a full mesh at a time
 * (failing over between its seeds), sends up only its own clients' interest,
 * receives only what matches it, and is never gossiped or dialed by the mesh.
 * Every case runs real nodes and SDK clients over loopback.
 */
const nodes: TestNode[] = [];
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
});

async function node(opts: ClusterOptions, name: string, logger?: Logger): Promise<TestNode> {
  let t: TestNode;
  if (logger === undefined) t = await startMeshNode(opts, name);
  else {
    const n = await startNode({ port: 0, logger, name, pingInterval: 1000 });
    const c = await new ClusterNode(n, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, ...opts }).start();
    t = { node: n, cluster: c, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${c.port}` };
  }
  nodes.push(t);
  return t;
}
/** Subscriptions `t` holds for other nodes: its peers' and (on a hub) its leaves'. */
function remoteInterest(t: TestNode): number {
  let n = 0;
  t.node.table.forEach((s) => {
    if (s.owner.kind === 'peer' || s.owner.kind === 'leaf') n++;
  });
  return n;
}
async function cli(t: TestNode): Promise<Client> {
  const c = await client(t);
  clients.push(c);
  return c;
}
function hubUp(leaf: TestNode): boolean {
  return leaf.cluster.peers().some((p) => p.state === 'up');
}
function leavesOf(hub: TestNode): string[] {
  return hub.cluster.peers().filter((p) => p.leaf && p.state === 'up').map((p) => p.id);
}
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 150));

/** Two hubs A and B in a full mesh; leaf L1 under A, leaf L2 under B. */
async function topology(): Promise<{ a: TestNode; b: TestNode; l1: TestNode; l2: TestNode }> {
  const a = await node({}, 'hub-a');
  const b = await node({ seeds: [a.peerAddr] }, 'hub-b');
  await until(() => fullyMeshed([a, b]), 'the hubs to mesh');
  const l1 = await node({ mode: 'leaf', seeds: [a.peerAddr] }, 'leaf-1');
  const l2 = await node({ mode: 'leaf', seeds: [b.peerAddr] }, 'leaf-2');
  await until(() => hubUp(l1) && hubUp(l2), 'the leaves to link to their hubs');
  return { a, b, l1, l2 };
}

describe('leaf nodes', () => {
  it('route events, wildcards and replies between leaves and hubs, each event once, in order', async () => {
    const { a, b, l1, l2 } = await topology();
    const s1 = await cli(l1);
    const s2 = await cli(l2);
    const sb = await cli(b);
    const got1 = collect(s1, 'x.>');
    const got2 = collect(s2, 'x.*');
    const gotB = collect(sb, 'x.>');
    for (const c of [s1, s2, sb]) await c.flush();
    // L1's interest reaches B through A (announced by A as its own), L2's A through B;
    // each leaf hears what the rest of the mesh wants.
    await until(() => remoteInterest(a) === 3 && remoteInterest(b) === 2 && remoteInterest(l1) === 2 && remoteInterest(l2) === 1, 'the leaves\' interest across the mesh');

    const fromB = await cli(b);
    const fromL1 = await cli(l1);
    for (let i = 0; i < 100; i++) fromB.publish('x.b', `b${i}`);
    for (let i = 0; i < 100; i++) fromL1.publish('x.l', `l${i}`);
    await fromB.flush();
    await fromL1.flush();
    const want = (p: string): string[] => Array.from({ length: 100 }, (_, i) => `${p}${i}`);
    for (const got of [got1, got2, gotB]) await until(() => got.length >= 200, 'every event at every subscriber');
    await settle();
    for (const got of [got1, got2, gotB]) {
      expect(got.filter((g) => g.startsWith('b'))).toEqual(want('b'));
      expect(got.filter((g) => g.startsWith('l'))).toEqual(want('l'));
      expect(got).toHaveLength(200);
    }

    // Request from one leaf, answered on the other.
    s2.subscribe('svc.echo', { callback: (m: Msg) => m.respond(`echo ${Buffer.from(m.data).toString()}`) });
    await s2.flush();
    await until(() => remoteInterest(l1) === 3, 'the responder\'s interest at L1');
    const reply = await s1.request('svc.echo', 'hi', { timeout: 3000 });
    expect(Buffer.from(reply.data).toString()).toBe('echo hi');
  });

  it('send up only their clients\' interest, hear only what the mesh wants, and are never gossiped', async () => {
    const { a, b, l1, l2 } = await topology();
    const onL1 = await cli(l1);
    collect(onL1, 'only.l1');
    await onL1.flush();
    await until(() => remoteInterest(b) === 1 && remoteInterest(l2) === 1, 'L1\'s interest at B and L2');
    // A does not announce L1's own interest back to L1, nor to L2 anything nobody else wants.
    await settle();
    expect(remoteInterest(l1)).toBe(0);
    expect(remoteInterest(l2)).toBe(1);

    // An event nobody at L1 wants never crosses A's link to L1.
    const linkOut = (): number => a.cluster.peers().find((p) => p.leaf)!.msgsOut;
    const before = linkOut();
    const pub = await cli(b);
    for (let i = 0; i < 20; i++) pub.publish('nobody.there', 'x');
    pub.publish('only.l1', 'y');
    await pub.flush();
    await until(() => linkOut() === before + 1, 'the one wanted event to cross to L1');
    await settle();
    expect(linkOut()).toBe(before + 1);

    // Leaves are links of their hub only: the mesh neither lists nor dials them.
    expect(leavesOf(a)).toEqual([l1.node.id]);
    expect(leavesOf(b)).toEqual([l2.node.id]);
    for (const hub of [a, b]) {
      const ids = hub.cluster.peers().filter((p) => !p.leaf).map((p) => p.id);
      expect(ids).not.toContain(l1.node.id);
      expect(ids).not.toContain(l2.node.id);
    }
    // A leaf gives its clients no failover URLs into the hub's region.
    expect(l1.cluster.clientUrls()).toEqual([]);
  });

  it('give each queue-group event to exactly one member, wherever the members are', async () => {
    const { a, b, l1, l2 } = await topology();
    const members = await Promise.all([cli(l1), cli(l2), cli(b), cli(a)]);
    const gots = members.map((m) => collect(m, 'jobs.>', { queue: 'workers' }));
    for (const m of members) await m.flush();
    await until(() => remoteInterest(a) >= 2 && remoteInterest(b) >= 2 && remoteInterest(l1) >= 1 && remoteInterest(l2) >= 1, 'group interest everywhere');
    for (const from of [l1, b]) {
      const pub = await cli(from);
      for (let i = 0; i < 150; i++) pub.publish('jobs.run', `${from.cluster.self.name}-${i}`);
      await pub.flush();
    }
    await until(() => gots.reduce((n, g) => n + g.length, 0) >= 300, 'every job');
    await settle();
    const all = gots.flat();
    expect(all).toHaveLength(300);
    expect(new Set(all).size).toBe(300);
  });

  it('fail over to another hub when theirs dies, and keep per-publisher order without duplicates', async () => {
    const a = await node({}, 'hub-a');
    const b = await node({ seeds: [a.peerAddr] }, 'hub-b');
    await until(() => fullyMeshed([a, b]), 'the hubs to mesh');
    const leaf = await node({ mode: 'leaf', seeds: [a.peerAddr, b.peerAddr] }, 'leaf');
    await until(() => hubUp(leaf), 'the leaf to link to a hub');
    // Exactly one hub link, whichever answered first.
    await settle();
    expect(leaf.cluster.peers().filter((p) => p.state === 'up')).toHaveLength(1);
    const first = leavesOf(a).length === 1 ? a : b;
    const other = first === a ? b : a;
    expect(leavesOf(other)).toEqual([]);

    const sub = await cli(leaf);
    const got = collect(sub, 'tick');
    await sub.flush();
    await until(() => remoteInterest(other) === 1, 'the leaf\'s interest at the other hub');
    const pub = await cli(other);
    let i = 0;
    const send = (n: number): void => {
      for (const end = i + n; i < end; ) pub.publish('tick', String(i++));
    };
    send(50);
    await pub.flush();
    await until(() => got.length === 50, 'events before the failover');

    await stopMeshNode(first);
    nodes.splice(nodes.indexOf(first), 1);
    await until(() => leavesOf(other).length === 1, 'the leaf to link to the other hub', 15_000);
    await until(() => remoteInterest(other) === 1, 'the leaf\'s interest again');
    send(50);
    await pub.flush();
    await until(() => got.length >= 100, 'events after the failover', 15_000);
    await settle();
    const seen = got.map(Number);
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe('topology errors', () => {
  function capture(): { logger: Logger; lines: string[] } {
    const lines: string[] = [];
    const put = (o: object, msg?: string): void => void lines.push(`${msg ?? ''} ${JSON.stringify(o)}`);
    return { logger: { ...silentLogger, info: put, warn: put, error: put }, lines };
  }

  it('a full node seeded with a leaf refuses the link itself: no "leaf link up" / "leaf link down" per redial, the refusal said once', async () => {
    const hub = await node({}, 'hub');
    const leaf = await node({ mode: 'leaf', seeds: [hub.peerAddr] }, 'leaf');
    await until(() => hubUp(leaf), 'the leaf to link');
    const log = capture();
    const full = await node({ seeds: [leaf.peerAddr] }, 'full', log.logger);
    // redialMax 500 ms: ~10 redials in 3 s; before the fix each one logged a "leaf link up" and a "leaf link down".
    await until(() => log.lines.some((l) => l.includes('is a leaf node')), 'the full node to refuse the leaf');
    await new Promise((r) => setTimeout(r, 3000));
    expect(log.lines.filter((l) => l.startsWith('leaf link'))).toEqual([]);
    expect(log.lines.filter((l) => l.includes('MB_ERR_TOPOLOGY'))).toHaveLength(1);
    expect(full.cluster.peers().filter((p) => p.state === 'up')).toEqual([]);
    expect(leavesOf(full)).toEqual([]);
  });

  it('a node that dials a leaf, and a leaf that takes a leaf for its hub, are refused with MB_ERR_TOPOLOGY and a log line on both ends', async () => {
    const hub = await node({}, 'hub');
    const leafLog = capture();
    const leaf = await node({ mode: 'leaf', seeds: [hub.peerAddr] }, 'leaf', leafLog.logger);
    await until(() => hubUp(leaf), 'the leaf to link');
    const dialerLog = capture();
    await node({ seeds: [leaf.peerAddr] }, 'dialer', dialerLog.logger);
    await until(() => leafLog.lines.some((l) => l.includes('accepts no links')), 'the leaf to refuse the dialer');
    await until(() => dialerLog.lines.some((l) => l.includes('MB_ERR_TOPOLOGY')), 'the dialer to log the refusal');
    expect(leaf.cluster.peers().filter((p) => p.state === 'up').map((p) => p.id)).toEqual([hub.node.id]);

    const leaf2 = await node({ mode: 'leaf', seeds: [leaf.peerAddr] }, 'leaf-2');
    await until(() => leafLog.lines.filter((l) => l.includes('MB_ERR_TOPOLOGY')).length >= 2, 'the leaf to refuse the other leaf');
    expect(leaf2.cluster.ready()).toBe(false);
    expect(leavesOf(hub)).toEqual([leaf.node.id]);
  });
});

/**
 * Red-team cases against the topology features (leaf nodes, gateways, partial
 * mesh interest distance): configurations a user can write and peers that
 * misbehave. Real nodes over loopback.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Client } from '@meshbus/sdk';
import { freePort, silentLogger, startNode, type Logger, type NodeOptions } from '@meshbus/core';
import { FrameType, decodeFrames, encodeBody, encodeFrame } from '@meshbus/proto';
import { formatTrace, traceEvent } from '@meshbus/cli';
import { RawClient, tcpProxy, until, cleanups } from '@meshbus/testkit';
import { ClusterNode, type ClusterOptions } from '../src/index.js';
import type { PeerLink } from '../src/peer-link.js';
import { client, collect, fakePeer, stopMeshNode, type TestNode } from './mesh-helpers.js';

const cleanup = cleanups();

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A logger that keeps every line (message and fields) at info and above. */
function capture(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const put = (o: object, msg?: string): void => void lines.push(`${msg ?? ''} ${JSON.stringify(o)}`);
  return { logger: { ...silentLogger, info: put, warn: put, error: put }, lines };
}

async function node(opts: ClusterOptions, name: string, nodeOpts: NodeOptions = {}): Promise<TestNode> {
  const n = await startNode({ port: 0, logger: silentLogger, name, pingInterval: 1000, ...nodeOpts });
  const c = await new ClusterNode(n, { port: 0, pingInterval: 200, redialMin: 20, redialMax: 200, ...opts }).start();
  const t = { node: n, cluster: c, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${c.port}` };
  cleanup.push(() => stopMeshNode(t));
  return t;
}

async function cli(t: TestNode): Promise<Client> {
  const c = await client(t);
  cleanup.push(() => c.close().catch(() => {}));
  return c;
}

/** A TCP forwarder to `port` (a second address of the same node, as a DNS alias or a load balancer gives). */
async function proxyTo(port: number): Promise<string> {
  const proxy = await tcpProxy(port);
  cleanup.push(() => proxy.close());
  return proxy.addr;
}

describe('a leaf that reaches its hub at two addresses', () => {
  it.each([
    ['above', 'ffffffffffffffff'],
    ['below', '0000000000000001'],
  ])('keeps one link to it, the same one on both ends, and carries events (leaf id %s the hub id)', async (_, leafId) => {
    const hubLog = capture();
    const hub = await node({}, 'hub', { id: '1111111111111111', logger: hubLog.logger });
    const alias = await proxyTo(hub.cluster.port);
    const leaf = await node({ mode: 'leaf', seeds: [hub.peerAddr, alias] }, 'leaf', { id: leafId });
    const leafUp = (): boolean => hub.cluster.peers().some((p) => p.leaf && p.state === 'up') && leaf.cluster.peers().some((p) => p.state === 'up');
    await until(leafUp, 'the leaf to link to its hub');
    // Let both dials finish and whatever they cause settle.
    await sleep(600);
    await until(leafUp, 'the leaf to be linked after both dials');
    const ups = hubLog.lines.filter((l) => l.startsWith('leaf link up')).length;
    const sub = await cli(leaf);
    const got = collect(sub, 'x');
    await sub.flush();
    await until(() => ownerKinds(hub).includes('leaf'), 'the leaf\'s interest at the hub');
    const pub = await cli(hub);
    for (let i = 0; i < 20; i++) pub.publish('x', String(i));
    await pub.flush();
    await until(() => got.length === 20, 'events to reach the leaf');
    await sleep(400);
    // No flapping: the links that came up stayed.
    expect(hubLog.lines.filter((l) => l.startsWith('leaf link up')).length).toBe(ups);
    expect(ups).toBeLessThanOrEqual(2);
  });
});

/** The owner kind of every subscription `t` holds. */
function ownerKinds(t: TestNode): string[] {
  const kinds: string[] = [];
  t.node.table.forEach((s) => kinds.push(s.owner.kind));
  return kinds;
}

/** `t`'s gateway link to `region` that it dialed ('out') or accepted ('in'): a node's links are private, a hostile node's are not. */
function gatewayLink(t: TestNode, region: string, dir: 'out' | 'in'): PeerLink {
  const links = (t.cluster as unknown as { allLinks: Set<PeerLink> }).allLinks;
  const l = [...links].find((x) => x.kind === 'gateway' && x.region === region && x.state === 'up' && (x.role === 'dialer') === (dir === 'out'));
  if (!l) throw new Error(`no ${dir} gateway link to ${region}`);
  return l;
}

/** Two one-node regions eu and us joined by gateways (a link each way). */
async function twoRegions(): Promise<{ eu: TestNode; us: TestNode }> {
  const [pe, pu] = [await freePort(), await freePort()];
  const eu = await node({ port: pe, region: 'eu', gateways: { us: [`127.0.0.1:${pu}`] } }, 'eu-0');
  const us = await node({ port: pu, region: 'us', gateways: { eu: [`127.0.0.1:${pe}`] } }, 'us-0');
  const both = (t: TestNode): boolean => t.cluster.peers().filter((p) => p.gateway !== undefined && p.state === 'up').length === 2;
  await until(() => both(eu) && both(us), 'a gateway link each way');
  return { eu, us };
}

describe('a gateway peer that uses a link in the wrong direction', () => {
  it('announcing interest over a link it dialed gets nothing sent back over that link (no duplicates in its region)', async () => {
    const { eu, us } = await twoRegions();
    const sub = await cli(us);
    const got = collect(sub, 'x');
    await sub.flush();
    await until(() => ownerKinds(eu).includes('gateway'), 'the us subscriber\'s interest at eu');
    // us (buggy or hostile) announces interest over the link it dialed, where it must send only events.
    gatewayLink(us, 'eu', 'out').sendControl(FrameType.INTEREST, { add: [[1, 'x', null, 1]] });
    await sleep(200);
    const pub = await cli(eu);
    for (let i = 0; i < 10; i++) pub.publish('x', String(i));
    await pub.flush();
    await until(() => got.length >= 10, 'the events in us');
    await sleep(300);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
  });

  it('sending events over a link it accepted has them ignored (no duplicates in the dialer\'s region)', async () => {
    const { eu, us } = await twoRegions();
    const sub = await cli(eu);
    const got = collect(sub, 'y');
    await sub.flush();
    await until(() => ownerKinds(us).includes('gateway'), 'the eu subscriber\'s interest at us');
    // us (buggy or hostile) routes its events over the link eu dialed too, where it must send none.
    const wrong = gatewayLink(us, 'eu', 'in');
    us.node.table.add({ sid: 1, pattern: 'y', queue: undefined, owner: wrong, slow: 'drop' });
    const pub = await cli(us);
    for (let i = 0; i < 10; i++) pub.publish('y', String(i));
    await pub.flush();
    await until(() => got.length >= 10, 'the events in eu');
    await sleep(300);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
  });
});

describe('a leaf that forwards events it did not publish', () => {
  it('cannot poison the hub\'s per-publisher order for another node (forged origin, far-future sequence)', async () => {
    const hub = await node({}, 'hub');
    const peer = await node({ seeds: [hub.peerAddr] }, 'peer');
    await until(() => hub.cluster.link(peer.node.id)?.state === 'up' && peer.cluster.link(hub.node.id)?.state === 'up', 'the mesh');
    const leaf = await node({ mode: 'leaf', seeds: [hub.peerAddr] }, 'leaf');
    await until(() => leaf.cluster.link(hub.node.id)?.state === 'up', 'the leaf\'s hub link');
    const sub = await cli(hub);
    const got = collect(sub, 'z');
    await sub.flush();
    await until(() => ownerKinds(peer).includes('peer'), 'the hub\'s interest at the peer');
    // The leaf (buggy or hostile) sends up an event stamped as the peer's, far in the future.
    const forged = encodeFrame({ type: FrameType.PUB, topic: 'z', payload: Buffer.from('forged'), origin: Buffer.from(peer.node.id, 'hex'), seq: 2 ** 52, maxHops: 8 });
    leaf.cluster.link(hub.node.id)!.sendRaw(forged);
    await sleep(200);
    const pub = await cli(peer);
    for (let i = 0; i < 10; i++) pub.publish('z', String(i));
    await pub.flush();
    await until(() => got.filter((g) => g !== 'forged').length >= 10, 'the peer\'s events at the hub');
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    expect(hub.cluster.badPeerEvents).toBe(1);
  });
});

describe('a partial-mesh node linked to nodes of a full mesh', () => {
  it('is refused (MB_ERR_TOPOLOGY, logged), so the full mesh\'s subscribers never get an event twice', async () => {
    const log = capture();
    const f1 = await node({}, 'full-1', { logger: log.logger });
    const f2 = await node({ seeds: [f1.peerAddr] }, 'full-2');
    await until(() => f1.cluster.link(f2.node.id)?.state === 'up' && f2.cluster.link(f1.node.id)?.state === 'up', 'the full mesh');
    // A user's edge node, configured partial and seeded with both nodes of the full mesh.
    const p = await node({ mode: 'partial', seeds: [f1.peerAddr, f2.peerAddr] }, 'partial');
    await until(() => log.lines.some((l) => l.includes('a full-mesh node and a partial-mesh node cannot link')), 'the refusal');
    expect(p.cluster.peers().filter((x) => x.state === 'up')).toEqual([]);
    const sub = await cli(f2);
    const got = collect(sub, 'd');
    await sub.flush();
    await sleep(400);
    const pub = await cli(f1);
    for (let i = 0; i < 10; i++) pub.publish('d', String(i));
    await pub.flush();
    await until(() => got.length >= 10, 'the events at full-2');
    await sleep(400);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
  });
});

describe('mesh modes that do link', () => {
  it('a leaf under a partial-mesh node, and partial nodes together, carry events', async () => {
    const p1 = await node({ mode: 'partial' }, 'p1');
    const p2 = await node({ mode: 'partial', seeds: [p1.peerAddr] }, 'p2');
    const leaf = await node({ mode: 'leaf', seeds: [p2.peerAddr] }, 'leaf');
    await until(() => p1.cluster.link(p2.node.id)?.state === 'up' && leaf.cluster.link(p2.node.id)?.state === 'up', 'the links');
    const sub = await cli(leaf);
    const got = collect(sub, 'e');
    await sub.flush();
    await until(() => ownerKinds(p1).includes('peer'), 'the leaf\'s interest at p1');
    const pub = await cli(p1);
    for (let i = 0; i < 5; i++) pub.publish('e', String(i));
    await pub.flush();
    await until(() => got.length >= 5, 'the events at the leaf');
    await sleep(200);
    expect(got).toEqual(['0', '1', '2', '3', '4']);
  });
});

describe('request/reply leaf → hub → hub → leaf', () => {
  it('when the responder\'s hub dies mid-request: every request settles (reply or error), and replies resume through the other hub', async () => {
    const a = await node({}, 'hub-a');
    const b = await node({ seeds: [a.peerAddr] }, 'hub-b');
    await until(() => a.cluster.link(b.node.id)?.state === 'up' && b.cluster.link(a.node.id)?.state === 'up', 'the hubs');
    const l1 = await node({ mode: 'leaf', seeds: [a.peerAddr] }, 'leaf-1');
    const l2 = await node({ mode: 'leaf', seeds: [b.peerAddr, a.peerAddr] }, 'leaf-2', { id: 'ffffffffffffff02' });
    await until(() => l1.cluster.link(a.node.id)?.state === 'up' && l2.cluster.peers().some((p) => p.state === 'up'), 'the leaves');
    const hubOfL2 = l2.cluster.link(b.node.id) ? b : a;
    const responder = await cli(l2);
    responder.subscribe('svc.echo', { callback: (m) => m.respond(m.data) });
    await responder.flush();
    const requester = await cli(l1);
    await until(() => requester.request('svc.echo', 'ping', { timeout: 300 }).then(() => true, () => false), 'a first reply');
    const outcomes: Array<Promise<string>> = [];
    const ask = (i: number): Promise<string> =>
      requester.request('svc.echo', String(i), { timeout: 1500 }).then(
        (m) => (Buffer.from(m.data).toString() === String(i) ? 'ok' : 'wrong'),
        (e: { code?: string }) => e.code ?? 'error',
      );
    for (let i = 0; i < 20; i++) outcomes.push(ask(i));
    await stopMeshNode(hubOfL2);
    for (let i = 20; i < 40; i++) outcomes.push(ask(i));
    const settled = await Promise.all(outcomes);
    expect(settled).not.toContain('wrong');
    // Each either answered or failed with a stable code (timeout, no responders), never hung.
    for (const s of settled) expect(['ok', 'MB_ERR_TIMEOUT', 'MB_ERR_NO_RESPONDERS']).toContain(s);
    if (hubOfL2 === a) return; // the requester's own hub died: nothing to resume through
    await until(() => requester.request('svc.echo', 'again', { timeout: 300 }).then(() => true, () => false), 'replies through hub-a', 15_000);
  });
});

describe('a leaf that announces more interest than its hub\'s peers take from the hub', () => {
  it('cannot crowd the hub\'s own clients out of its peers\' routing (leaves get half of maxPeerInterest, together)', async () => {
    const hub = await node({ maxPeerInterest: 40 }, 'hub');
    const peer = await node({ maxPeerInterest: 40, seeds: [hub.peerAddr] }, 'peer');
    await until(() => hub.cluster.link(peer.node.id)?.state === 'up' && peer.cluster.link(hub.node.id)?.state === 'up', 'the mesh');
    const leaf = await node({ mode: 'leaf', seeds: [hub.peerAddr] }, 'leaf');
    await until(() => leaf.cluster.link(hub.node.id)?.state === 'up', 'the leaf');
    // The leaf's clients want 40 topics: as many entries as the peer takes from the hub in all.
    const greedy = await cli(leaf);
    const leafGot: string[] = [];
    for (let i = 0; i < 40; i++) greedy.subscribe(`leaf.${i}`, { callback: () => leafGot.push(String(i)) });
    await greedy.flush();
    await sleep(300);
    // Then a client of the hub subscribes: the peer must still route its events to the hub.
    const own = await cli(hub);
    const got = collect(own, 'mine');
    await own.flush();
    const pub = await cli(peer);
    await until(async () => {
      pub.publish('mine', 'x');
      await pub.flush();
      await sleep(50);
      return got.length > 0;
    }, 'the hub\'s client to get the peer\'s event');
    // The leaf's first 20 topics are routed from the peer.
    for (let i = 0; i < 20; i++) pub.publish(`leaf.${i}`, 'y');
    await pub.flush();
    await until(() => leafGot.length >= 20, 'the leaf\'s events within its share');
  });
});

describe('gateway settings a user can get wrong', () => {
  it('a gateway address that leads back to the node itself is an error in the log, and is not dialed again', async () => {
    const log = capture();
    const port = await freePort();
    const alias = await proxyTo(port);
    await node({ port, region: 'eu', gateways: { us: [alias] } }, 'eu-0', { logger: log.logger });
    await until(() => log.lines.some((l) => l.includes(`gateway address ${alias} of region us leads to this node itself`)), 'the error');
    await sleep(500);
    expect(log.lines.filter((l) => l.startsWith('peer link refused: gateway address'))).toHaveLength(1);
  });

  it('a node without --region that joins a region\'s mesh is linked, with a warning that its events stay in the region', async () => {
    const euLog = capture();
    const eu = await node({ region: 'eu' }, 'eu-0', { logger: euLog.logger });
    const plain = await node({ seeds: [eu.peerAddr] }, 'no-region');
    await until(() => plain.cluster.link(eu.node.id)?.state === 'up', 'the link');
    await until(() => euLog.lines.some((l) => l.includes('peer no-region has no --region while this node is in region eu')), 'the warning');
  });

  it('a region dialed by another that has no gateways back to it says so once', async () => {
    const usLog = capture();
    const pu = await freePort();
    await node({ port: pu, region: 'us' }, 'us-0', { logger: usLog.logger });
    await node({ region: 'eu', gateways: { us: [`127.0.0.1:${pu}`] } }, 'eu-0');
    await until(() => usLog.lines.some((l) => l.includes('region eu dials this node, but this node has no --gateways for it')), 'the warning');
  });
});

describe('a traced event published on a leaf', () => {
  it('reports every hop leaf → hub → hub → leaf to its tracer only, not to a client that learned the id elsewhere', async () => {
    const a = await node({}, 'hub-a');
    const b = await node({ seeds: [a.peerAddr] }, 'hub-b');
    await until(() => a.cluster.link(b.node.id)?.state === 'up' && b.cluster.link(a.node.id)?.state === 'up', 'the hubs');
    const l1 = await node({ mode: 'leaf', seeds: [a.peerAddr] }, 'leaf-1');
    const l2 = await node({ mode: 'leaf', seeds: [b.peerAddr] }, 'leaf-2');
    await until(() => l1.cluster.link(a.node.id)?.state === 'up' && l2.cluster.link(b.node.id)?.state === 'up', 'the leaves');
    const sub = await cli(l2);
    const got = collect(sub, 'orders.>');
    await sub.flush();
    await until(() => ownerKinds(l1).includes('peer'), 'the subscriber\'s interest at leaf-1');
    const tracer = await cli(l1);
    const { hops, id } = await traceEvent(tracer, 'orders.new', Buffer.from('traced'), 800);
    expect(got).toEqual(['traced']);
    expect(hops.map((h) => h.name), formatTrace('orders.new', id, hops)).toEqual(['leaf-1', 'hub-a', 'hub-b', 'leaf-2']);
    // A client of hub-b that saw the id (it travels in the event) gets no records of it.
    const snoop = await cli(b);
    const snooped = collect(snoop, `_TRACE.${id}`);
    await snoop.flush();
    tracer.publish('orders.again', 'x', { trace: id });
    await tracer.flush();
    await until(() => got.length >= 2, 'the second event');
    await sleep(300);
    expect(snooped).toEqual([]);
  });
});

describe('the failed-authentication throttle', () => {
  it('does not let failed client tokens from an address lock a leaf at that address out of its hub', async () => {
    const secret = 'correct horse battery';
    const hub = await node({ secret }, 'hub', { token: 'right-token', authThrottle: { maxFailures: 3, windowMs: 60_000 } });
    // Anyone sharing the leaf's address (a NAT, a proxy, this host) fails client tokens until throttled.
    for (let i = 0; i < 5; i++) {
      const c = await RawClient.connect(hub.node.port, { token: 'wrong' }).catch(() => undefined);
      c?.close();
    }
    expect(hub.node.authThrottle.refusal('127.0.0.1', 'client')?.code).toBe('MB_ERR_AUTH_THROTTLED');
    const leaf = await node({ mode: 'leaf', secret, seeds: [hub.peerAddr] }, 'leaf');
    await until(() => leaf.cluster.link(hub.node.id)?.state === 'up', 'the leaf to link to its hub', 5000);
  });
});

describe('a leaf that flaps between its hubs', () => {
  it('leaves no interest behind: after 8 link losses, only its current hub holds its subscriptions, and events reach it once', async () => {
    const a = await node({}, 'hub-a');
    const b = await node({ seeds: [a.peerAddr] }, 'hub-b');
    await until(() => a.cluster.link(b.node.id)?.state === 'up' && b.cluster.link(a.node.id)?.state === 'up', 'the hubs');
    const leaf = await node({ mode: 'leaf', seeds: [a.peerAddr, b.peerAddr] }, 'leaf');
    const sub = await cli(leaf);
    const got = collect(sub, 'f.>');
    collect(sub, 'g.one');
    collect(sub, 'h.*', { queue: 'q' });
    await sub.flush();
    const hubOf = (): TestNode | undefined => [a, b].find((h) => h.cluster.peers().some((p) => p.leaf && p.state === 'up'));
    const count = (t: TestNode, kind: string): number => ownerKinds(t).filter((k) => k === kind).length;
    for (let i = 0; i < 8; i++) {
      await until(() => hubOf() !== undefined && count(hubOf()!, 'leaf') === 3, 'the leaf linked with its interest');
      const hub = hubOf()!;
      const link = (hub.cluster as unknown as { allLinks: Set<PeerLink> }).allLinks;
      for (const l of link) if (l.kind === 'leaf') l.close('test: lost');
    }
    await until(() => hubOf() !== undefined && count(hubOf()!, 'leaf') === 3, 'the leaf linked at the end');
    await sleep(500);
    const hub = hubOf()!;
    const other = hub === a ? b : a;
    expect(count(hub, 'leaf')).toBe(3);
    expect(count(other, 'leaf')).toBe(0);
    // The other hub holds the leaf's interest once, as its hub's.
    await until(() => count(other, 'peer') === 3, 'the leaf\'s interest at the other hub');
    const pub = await cli(other);
    for (let i = 0; i < 10; i++) pub.publish('f.x', String(i));
    await pub.flush();
    await until(() => got.length >= 10, 'the events at the leaf');
    await sleep(300);
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
  });
});

describe('queue groups with max across a leaf', () => {
  it.each([['its own hub', 'a'], ['another hub', 'b']])(
    'a leaf member that reaches its max loses none of the events sent to it meanwhile (publisher on %s): each reaches exactly one member',
    async (_, at) => {
      const a = await node({}, 'hub-a');
      const b = await node({ seeds: [a.peerAddr] }, 'hub-b');
      const c = await node({ seeds: [a.peerAddr] }, 'hub-c');
      const meshed = (): boolean => [a, b, c].every((x) => [a, b, c].every((y) => x === y || x.cluster.link(y.node.id)?.state === 'up'));
      await until(meshed, 'the hubs');
      const leaf = await node({ mode: 'leaf', seeds: [a.peerAddr] }, 'leaf');
      await until(() => leaf.cluster.link(a.node.id)?.state === 'up', 'the leaf');
      const onLeaf = await cli(leaf);
      const onC = await cli(c);
      const gotLeaf: string[] = [];
      const gotC = collect(onC, 'job', { queue: 'w' });
      onLeaf.subscribe('job', { queue: 'w', max: 5, callback: (m) => gotLeaf.push(Buffer.from(m.data).toString()) });
      await onLeaf.flush();
      await onC.flush();
      await until(() => count2(a, 'leaf') === 1 && count2(a, 'peer') === 1 && count2(b, 'peer') === 2, 'both members at the hubs');
      const pub = await cli(at === 'a' ? a : b);
      for (let i = 0; i < 60; i++) pub.publish('job', String(i));
      await pub.flush();
      const dropped = (): number => [a, b, c, leaf].reduce((n, t) => n + t.node.stats.dropped.noQueueMember, 0);
      await until(() => gotLeaf.length + gotC.length + dropped() >= 60, 'every job delivered or counted');
      await sleep(300);
      expect(gotLeaf.length).toBeLessThanOrEqual(5);
      const all = [...gotLeaf, ...gotC];
      expect(new Set(all).size).toBe(all.length);
      expect(dropped()).toBe(0);
      expect(all.length).toBe(60);
    },
  );
});

function count2(t: TestNode, kind: string): number {
  return ownerKinds(t).filter((k) => k === kind).length;
}

describe('a hostile leaf (it holds the cluster secret)', () => {
  it('cannot make its hub dial anyone (PEERS), and its odd interest distances neither crash the hub nor travel past the bound', async () => {
    const secret = 'correct horse battery';
    const hub = await node({ secret }, 'hub');
    const peer = await node({ secret, seeds: [hub.peerAddr] }, 'peer');
    await until(() => hub.cluster.link(peer.node.id)?.state === 'up' && peer.cluster.link(hub.node.id)?.state === 'up', 'the mesh');
    let dials = 0;
    const trap = net.createServer((s) => {
      dials++;
      s.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => trap.close(() => r())));
    const trapAddr = `127.0.0.1:${(trap.address() as net.AddressInfo).port}`;
    const me = { id: 'abcdefabcdef0001', name: 'bad-leaf', cluster: '127.0.0.1:9', client: '127.0.0.1:9', leaf: true as const };
    const leaf = await fakePeer(hub, me, secret);
    cleanup.push(() => leaf.close());
    expect(hub.cluster.peers().find((p) => p.id === me.id)?.leaf).toBe(true);
    // Gossip naming another node, as a hub would send it.
    leaf.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [{ id: 'abcdefabcdef0002', name: 'lure', cluster: trapAddr, client: '127.0.0.1:9' }], links: [] }) });
    // Distances: none, 0, negative, fractional, huge, a string, and 8 (the farthest announced).
    const odd: unknown[] = [undefined, 0, -5, 2.5, 1e9, 'x', 8];
    leaf.send({ type: FrameType.INTEREST, payload: encodeBody({ snap: true, add: odd.map((d, i) => (d === undefined ? [i + 1, `odd.${i}`, null] : [i + 1, `odd.${i}`, null, d])) }) });
    await leaf.flush();
    // Read as one link away, except 8: announced at 9, past the bound, it goes no further.
    await until(() => ownerKinds(peer).filter((k) => k === 'peer').length === 6, 'the leaf\'s interest at the peer');
    await sleep(400);
    const patterns: string[] = [];
    peer.node.table.forEach((s) => patterns.push(s.pattern));
    expect(patterns.sort()).toEqual(['odd.0', 'odd.1', 'odd.2', 'odd.3', 'odd.4', 'odd.5']);
    expect(dials).toBe(0);
    expect(hub.cluster.peers().some((p) => p.id === 'abcdefabcdef0002')).toBe(false);
    // Withdrawn with the link.
    leaf.close();
    await until(() => !ownerKinds(peer).includes('peer'), 'the leaf\'s interest withdrawn at the peer');
  });
});

describe('an event a leaf delivers for its durable store (a delayed publish due now)', () => {
  it('leaves it stamped as the leaf\'s own, so its hub routes it (another node\'s id on it would be dropped as forged)', async () => {
    const hub = await node({}, 'hub');
    const leaf = await node({ mode: 'leaf', seeds: [hub.peerAddr] }, 'leaf');
    await until(() => leaf.cluster.link(hub.node.id)?.state === 'up', 'the leaf');
    const sub = await cli(hub);
    const got = collect(sub, 'later');
    await sub.flush();
    await until(() => ownerKinds(leaf).includes('peer'), 'the hub\'s interest at the leaf');
    // As a delayed job comes back from Redis: stamped by whichever node took the publish.
    const stored = encodeFrame({ type: FrameType.PUB, topic: 'later', payload: Buffer.from('due'), origin: Buffer.from('0123456789abcdef', 'hex'), seq: 5, maxHops: 8 });
    leaf.node.deliverAccepted(decodeFrames(stored)[0]!);
    await until(() => got.length === 1, 'the delayed event at the hub');
    expect(hub.cluster.badPeerEvents).toBe(0);
  });
});

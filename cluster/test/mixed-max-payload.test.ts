import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_PAYLOAD, FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { silentLogger, type Logger } from '@meshbus/core';
import type { Client, Msg } from '@meshbus/sdk';
import { RawClient, freePort, until } from '@meshbus/testkit';
import type { ClusterOptions, PeerInfo } from '../src/index.js';
import type { PeerLink } from '../src/peer-link.js';
import { client, fakePeer, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

/**
 * Nodes with different `--max-payload` in one mesh (cluster/README.md
 * "Limits"). Before, a node forwarded a peer every event its own limit
 * allowed: the peer delivered one up to twice its own limit and refused a
 * larger one with a "bad frame from peer" warning per frame, while the
 * publisher heard nothing. Now each node says its limit in HELLO/WELCOME, a
 * node never sends a link an event its peer would refuse (counted in
 * `dropped.tooLargeForPeer`, told once per peer), and a receiver drops what
 * an older node sends over its limit (`dropped.tooLargeFromPeer`, told once
 * per peer and way). Real nodes over loopback, every kind of link.
 */
const BIG = 200_000;
/** Frames up to 60 + 256 + 65,535 + 2 × 50,000 = 165,851 B decode on this node; larger ones are skipped by its decoder. */
const SMALL = 50_000;
const TOPIC = 'sized.events';

const nodes: TestNode[] = [];
const clients: Client[] = [];
const raws: RawClient[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  for (const c of clients.splice(0)) await c.close().catch(() => {});
  for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
});

interface Logged {
  node: TestNode;
  lines: string[];
}

async function node(opts: ClusterOptions, name: string, maxPayload: number): Promise<Logged> {
  const lines: string[] = [];
  const put = (o: object, msg?: string): void => void lines.push(`${msg ?? ''} ${JSON.stringify(o)}`);
  const logger: Logger = { ...silentLogger, info: put, warn: put, error: put };
  const t = await startMeshNode(opts, name, { maxPayload, logger });
  nodes.push(t);
  return { node: t, lines };
}

async function cli(t: TestNode): Promise<Client> {
  const c = await client(t);
  clients.push(c);
  return c;
}

/** Sizes of the payloads a subscription receives. */
async function sizes(t: TestNode): Promise<number[]> {
  const got: number[] = [];
  const c = await cli(t);
  c.subscribe(TOPIC, { callback: (m: Msg) => void got.push(m.data.length) });
  await c.flush();
  return got;
}

/** Every link of `t`'s cluster (peers, leaves, gateways both ways). */
function linksOf(t: TestNode): PeerLink[] {
  return [...(t.cluster as unknown as { allLinks: Set<PeerLink> }).allLinks];
}

/** Bytes `t` has read from its links to node `from`, off their sockets. */
function bytesReadFrom(t: TestNode, from: string): number {
  let n = 0;
  for (const l of linksOf(t)) if (l.peerId === from) n += (l.transport as unknown as { socket: Socket }).socket.bytesRead;
  return n;
}

function upLinkUids(t: TestNode, to: string): number[] {
  return linksOf(t).filter((l) => l.peerId === to && l.state === 'up').map((l) => l.uid);
}

/** Whether `t` routes TOPIC to some link (it learned the other side's subscriber). */
function routesToLink(t: TestNode): boolean {
  let n = 0;
  t.node.table.forEach((s) => {
    if (s.owner.kind !== 'client' && s.pattern === TOPIC) n++;
  });
  return n > 0;
}

const tooLargeForPeerLines = (l: Logged): string[] => l.lines.filter((x) => x.includes('larger than the peer accepts'));
const badFrameLines = (l: Logged): string[] => l.lines.filter((x) => x.includes('bad frame') || x.includes('larger than this node accepts'));

/**
 * `big` publishes to subscribers on both nodes: events up to `small`'s limit
 * reach both; larger ones (just over it, over its decoder's frame limit, a
 * burst) reach `big`'s subscriber only, are never written to the link,
 * counted on `big` and told once; `small` sees and says nothing, and the link
 * stays the same link. Then `small` publishes at its own limit: both get it.
 */
async function checkPair(big: Logged, small: Logged): Promise<void> {
  const atBig = await sizes(big.node);
  const atSmall = await sizes(small.node);
  await until(() => routesToLink(big.node) && routesToLink(small.node), 'both routed the topic to the other');
  const uids = upLinkUids(small.node, big.node.node.id);
  const pub = await cli(big.node);
  pub.publish(TOPIC, new Uint8Array(SMALL));
  await until(() => atSmall.length === 1 && atBig.length === 1, 'an event at the small limit reached both');
  const readBefore = bytesReadFrom(small.node, big.node.node.id);
  const over = [SMALL + 1, 190_000, 60_000, 60_000, 60_000, 60_000, 60_000];
  for (const n of over) pub.publish(TOPIC, new Uint8Array(n));
  // Per-publisher order: once the marker is in, anything sent before it would be too.
  pub.publish(TOPIC, new Uint8Array(1));
  await until(() => atSmall.includes(1) && atBig.includes(1), 'the marker reached both');
  expect(atSmall).toEqual([SMALL, 1]);
  expect(atBig).toEqual([SMALL, ...over, 1]);
  // Nothing of the 490 KB went over the link: the marker (77 B measured), perhaps a ping or a PEERS frame.
  expect(bytesReadFrom(small.node, big.node.node.id) - readBefore).toBeLessThan(2_000);
  expect(big.node.node.stats.dropped.tooLargeForPeer).toBe(over.length);
  expect(big.node.cluster.peers().filter((p) => p.id === small.node.node.id && p.state === 'up').map((p) => [p.maxPayload, p.tooLarge])).toContainEqual([SMALL, over.length]);
  expect(tooLargeForPeerLines(big)).toHaveLength(1);
  expect(tooLargeForPeerLines(big)[0]).toContain(`"peerMaxPayload":${SMALL}`);
  expect(small.node.node.stats.dropped.tooLargeFromPeer).toBe(0);
  expect(badFrameLines(small)).toEqual([]);
  expect(upLinkUids(small.node, big.node.node.id)).toEqual(uids);
  // The other way: the small node's largest event reaches the big one.
  const back = await cli(small.node);
  back.publish(TOPIC, new Uint8Array(SMALL));
  await until(() => atBig.length === 3 + over.length && atSmall.length === 3, 'the small node\'s event reached both');
  expect(big.node.node.stats.dropped.tooLargeFromPeer).toBe(0);
  expect(badFrameLines(big)).toEqual([]);
}

describe('a mesh whose nodes have different max payloads', () => {
  it('full mesh: a node never forwards a peer an event larger than the peer accepts; counted, said once, the link kept', async () => {
    const big = await node({}, 'big', BIG);
    const small = await node({ seeds: [big.node.peerAddr] }, 'small', SMALL);
    await until(() => big.node.cluster.link(small.node.node.id)?.state === 'up', 'linked');
    await checkPair(big, small);
  });

  it('queue groups: a member on a node that accepts the event is picked over one on a node that would refuse it; with none, counted', async () => {
    const a = await node({}, 'a', BIG);
    const small = await node({ seeds: [a.node.peerAddr] }, 'small', SMALL);
    const big = await node({ seeds: [a.node.peerAddr] }, 'big', BIG);
    await until(() => a.node.cluster.link(small.node.node.id)?.state === 'up' && a.node.cluster.link(big.node.node.id)?.state === 'up', 'linked');
    const members = async (t: TestNode): Promise<{ got: number[]; c: Client }> => {
      const got: number[] = [];
      const c = await cli(t);
      c.subscribe(TOPIC, { queue: 'workers', callback: (m: Msg) => void got.push(m.data.length) });
      await c.flush();
      return { got, c };
    };
    const atSmall = await members(small.node);
    const atBig = await members(big.node);
    const routed = (): number => {
      let n = 0;
      a.node.node.table.forEach((s) => void (s.pattern === TOPIC && s.queue === 'workers' && n++));
      return n;
    };
    await until(() => routed() === 2, 'a learned both members');
    const pub = await cli(a.node);
    for (let i = 0; i < 10; i++) pub.publish(TOPIC, new Uint8Array(60_000));
    // Before, round robin: about half went to the small node's link, which skipped them.
    await until(() => atBig.got.length + a.node.node.stats.dropped.tooLargeForPeer === 10, 'every large event delivered or counted');
    expect(atBig.got).toHaveLength(10);
    expect(atSmall.got).toEqual([]);
    expect(a.node.node.stats.dropped.tooLargeForPeer).toBe(0);
    // Only the small node's member left: a large event is counted, a small one delivered.
    await atBig.c.close();
    await until(() => routed() === 1, 'a forgot the big node\'s member');
    pub.publish(TOPIC, new Uint8Array(60_000));
    pub.publish(TOPIC, new Uint8Array(1));
    await until(() => atSmall.got.length === 1, 'the small event reached the small node\'s member');
    expect(atSmall.got).toEqual([1]);
    expect(a.node.node.stats.dropped.tooLargeForPeer).toBe(1);
  });

  it('a request whose only responders are behind a link that would skip it hears MB_ERR_NO_RESPONDERS at once, not a timeout', async () => {
    const big = await node({}, 'big', BIG);
    const small = await node({ seeds: [big.node.peerAddr] }, 'small', SMALL);
    await until(() => big.node.cluster.link(small.node.node.id)?.state === 'up', 'linked');
    for (const queue of [undefined, 'responders']) {
      const topic = `svc.echo.${queue ?? 'plain'}`;
      const responder = await cli(small.node);
      responder.subscribe(topic, { queue, callback: (m: Msg) => void m.respond(String(m.data.length)) });
      await responder.flush();
      await until(() => {
        let n = 0;
        big.node.node.table.forEach((sub) => void (sub.pattern === topic && n++));
        return n === 1;
      }, 'big learned the responder');
      const requester = await cli(big.node);
      // Before, the link counted as a receiver and skipped the event: the requester waited its whole timeout.
      await expect(requester.request(topic, new Uint8Array(60_000), { timeout: 20_000 })).rejects.toMatchObject({ code: 'MB_ERR_NO_RESPONDERS' });
      // One the peer takes is answered.
      expect((await requester.request(topic, new Uint8Array(100), { timeout: 5_000 })).string()).toBe('100');
    }
    expect(big.node.node.stats.dropped.tooLargeForPeer).toBe(2);
  });

  it('partial mesh: a node passing an event on skips the peer that would refuse it (the no-copy path of events for links only)', async () => {
    const a = await node({ mode: 'partial' }, 'a', BIG);
    const mid = await node({ mode: 'partial', seeds: [a.node.peerAddr] }, 'mid', BIG);
    const c = await node({ mode: 'partial', seeds: [mid.node.peerAddr] }, 'c', SMALL);
    await until(() => mid.node.cluster.link(c.node.node.id)?.state === 'up' && mid.node.cluster.link(a.node.node.id)?.state === 'up', 'linked in a line');
    const atC = await sizes(c.node);
    await until(() => routesToLink(a.node), 'a learned c\'s subscriber');
    const pub = await cli(a.node);
    for (const n of [SMALL, SMALL + 1, 190_000, 1]) pub.publish(TOPIC, new Uint8Array(n));
    await until(() => atC.includes(1), 'the marker reached c');
    expect(atC).toEqual([SMALL, 1]);
    // mid, not a, is where the limit is known: a sends mid everything, mid skips c.
    expect(a.node.node.stats.dropped.tooLargeForPeer).toBe(0);
    expect(mid.node.node.stats.dropped.tooLargeForPeer).toBe(2);
    expect(tooLargeForPeerLines(mid)).toHaveLength(1);
    expect(c.node.node.stats.dropped.tooLargeFromPeer).toBe(0);
    expect(badFrameLines(c)).toEqual([]);
  });

  it.each([
    { hub: BIG, leaf: SMALL, what: 'a hub with a larger limit than its leaf' },
    { hub: SMALL, leaf: BIG, what: 'a leaf with a larger limit than its hub' },
  ])('leaf link: $what sends the other only what it accepts', async ({ hub: hubMax, leaf: leafMax }) => {
    const hub = await node({}, 'hub', hubMax);
    const leaf = await node({ mode: 'leaf', seeds: [hub.node.peerAddr] }, 'leaf', leafMax);
    await until(() => leaf.node.cluster.peers().some((p) => p.state === 'up'), 'the leaf linked');
    if (hubMax > leafMax) await checkPair(hub, leaf);
    else await checkPair(leaf, hub);
  });

  it('gateway link: a region\'s node sends another region\'s node only what it accepts', async () => {
    const [euPort, usPort] = [await freePort(), await freePort()];
    const eu = await node({ port: euPort, region: 'eu', gateways: { us: [`127.0.0.1:${usPort}`] } }, 'eu', BIG);
    const us = await node({ port: usPort, region: 'us', gateways: { eu: [`127.0.0.1:${euPort}`] } }, 'us', SMALL);
    const gateways = (t: TestNode): number => t.cluster.peers().filter((p) => p.gateway !== undefined && p.state === 'up').length;
    await until(() => gateways(eu.node) === 2 && gateways(us.node) === 2, 'gateway links both ways');
    await checkPair(eu, us);
  });
});

describe('peers that do not say their limit, and what a receiver does with a frame over its own', () => {
  const secret = 'correct horse battery';
  const OLD: PeerInfo = { id: 'aaaaaaaaaaaaaaa1', name: 'old', cluster: '127.0.0.1:1', client: '127.0.0.1:2' };

  async function oldPeer(t: TestNode): Promise<RawClient> {
    const p = await fakePeer(t, OLD, secret);
    raws.push(p);
    return p;
  }

  it('a peer whose HELLO has no maxPayload is taken to accept the default (1 MiB), no more', async () => {
    const big = await node({ secret, pingInterval: 60_000 }, 'big', 2 * DEFAULT_MAX_PAYLOAD);
    const peer = await oldPeer(big.node);
    peer.send({ type: FrameType.INTEREST, payload: encodeBody({ snap: true, add: [[1, TOPIC, null, 1]] }) });
    await until(() => routesToLink(big.node), 'the old peer\'s interest learned');
    const pub = await cli(big.node);
    for (const n of [DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD + 1, 1]) pub.publish(TOPIC, new Uint8Array(n));
    await until(() => peer.events(TOPIC).some((g) => g.payload.length === 1), 'the marker reached the old peer');
    expect(peer.events(TOPIC).map((g) => g.payload.length)).toEqual([DEFAULT_MAX_PAYLOAD, 1]);
    expect(big.node.node.stats.dropped.tooLargeForPeer).toBe(1);
    expect(tooLargeForPeerLines(big)).toHaveLength(1);
  });

  it('events from a peer over this node\'s limit (an older node sends them) are dropped, counted, and said once per peer and way, the link kept', async () => {
    const small = await node({ secret, pingInterval: 60_000 }, 'small', SMALL);
    const atSmall = await sizes(small.node);
    const peer = await oldPeer(small.node);
    const origin = Buffer.from(OLD.id, 'hex');
    let seq = Date.now() * 1000;
    const event = (n: number): Uint8Array => encodeFrame({ type: FrameType.PUB, topic: TOPIC, origin, seq: ++seq, timestamp: Date.now(), payload: new Uint8Array(n) });
    // Over the limit but decodable (up to twice it), then over the decoder's frame limit (skipped unread), three of each.
    const sent = [SMALL, SMALL + 1, SMALL + 1, SMALL + 1, 170_000, 170_000, 170_000, 1];
    for (const n of sent) peer.sendBytes(event(n));
    await until(() => atSmall.includes(1), 'the marker reached the subscriber');
    expect(atSmall).toEqual([SMALL, 1]);
    expect(small.node.node.stats.dropped.tooLargeFromPeer).toBe(6);
    // One line per way of failing (payload over the limit; frame over the decoder's limit), not one per frame.
    const told = badFrameLines(small);
    expect(told).toHaveLength(2);
    expect(told.some((l) => l.includes('MB_ERR_PAYLOAD_TOO_LARGE'))).toBe(true);
    expect(told.some((l) => l.includes('MB_ERR_FRAME_TOO_LARGE'))).toBe(true);
    expect(small.node.cluster.peers().find((p) => p.id === OLD.id)?.state).toBe('up');
    expect(peer.closed).toBe(false);
  });
});

import { afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startNode, silentLogger, type MeshNode, type NodeOptions } from '@meshbus/core';
import { FrameType, decodeBody, encodeBody } from '@meshbus/proto';
import { connect, type Client, type Msg } from '@meshbus/sdk';
import { RawClient, until } from '@meshbus/testkit';
import { ClusterNode, type ClusterOptions, type PeerInfo } from '../src/index.js';
import { newNonce, proof } from '../src/peer-auth.js';

export interface TestNode {
  node: MeshNode;
  cluster: ClusterNode;
  url: string;
  peerAddr: string;
}

/** Starts a node (`nodeOpts` over the test defaults) with a cluster (`opts` over the test defaults) on free loopback ports. */
export async function startMeshNode(opts: ClusterOptions = {}, name = '', nodeOpts: NodeOptions = {}): Promise<TestNode> {
  const node = await startNode({ port: 0, logger: silentLogger, name, pingInterval: 1000, ...nodeOpts });
  const cluster = await new ClusterNode(node, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, ...opts }).start();
  return { node, cluster, url: `127.0.0.1:${node.port}`, peerAddr: `127.0.0.1:${cluster.port}` };
}

export async function stopMeshNode(t: TestNode): Promise<void> {
  await t.cluster.stop();
  await t.node.close();
}

/** True once every node has an up link to every other. */
export function fullyMeshed(nodes: TestNode[]): boolean {
  return nodes.every((n) => nodes.every((m) => m === n || n.cluster.link(m.node.id)?.state === 'up'));
}

/** Number of remote (peer-owned) subscriptions `t` holds. */
export function remoteInterest(t: TestNode): number {
  let n = 0;
  t.node.table.forEach((s) => {
    if (s.owner.kind === 'peer') n++;
  });
  return n;
}

export function client(t: TestNode, opts: Record<string, unknown> = {}): Promise<Client> {
  return connect(t.url, { name: 'test', ...opts });
}

/**
 * The nodes and clients of a test file, closed after each test (clients
 * first, then nodes, newest first): `tracked(t)` keeps a node started some
 * other way, `node(...)` starts one (startMeshNode), `cli(t)` an SDK client
 * of it; `clients` and `nodes` hold what is open now.
 */
export function meshKit(): {
  nodes: TestNode[];
  clients: Array<{ close(): unknown }>;
  tracked<T extends TestNode>(t: T): T;
  node(...args: Parameters<typeof startMeshNode>): Promise<TestNode>;
  cli(t: TestNode): Promise<Client>;
} {
  const nodes: TestNode[] = [];
  const clients: Array<{ close(): unknown }> = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await Promise.resolve(c.close()).catch(() => {});
    for (const t of nodes.splice(0).reverse()) await stopMeshNode(t).catch(() => {});
  });
  const tracked = <T extends TestNode>(t: T): T => (nodes.push(t), t);
  return {
    nodes,
    clients,
    tracked,
    node: async (...args) => tracked(await startMeshNode(...args)),
    cli: async (t) => {
      const c = await client(t);
      clients.push(c);
      return c;
    },
  };
}

/** Collects the payloads (as strings) a subscription receives. */
export function collect(c: Client, pattern: string, opts: { queue?: string } = {}): string[] {
  const got: string[] = [];
  c.subscribe(pattern, { ...opts, callback: (m: Msg) => got.push(Buffer.from(m.data).toString()) });
  return got;
}

/**
 * The dialing end of a peer link made of raw frames (a RawClient on `port`, the
 * cluster port), through HELLO and AUTH: with `secret` the proof of it, without
 * one an empty proof (a cluster that has no secret takes it). One refused at
 * its HELLO is returned as is, the node's ERROR in `got`.
 */
export async function rawPeer(port: number, me: PeerInfo, secret?: string): Promise<RawClient> {
  const nonce = newNonce();
  const c = await RawClient.connect(port, { peer: me, nonce });
  const w = c.got.find((g) => g.type === FrameType.WELCOME);
  if (w === undefined) return c; // refused at its HELLO: the ERROR is in c.got
  const body = decodeBody(w.payload) as { nonce: string; peer: PeerInfo };
  c.send({ type: FrameType.AUTH, payload: encodeBody({ proof: secret === undefined ? '' : proof(secret, 'dialer', nonce, body.nonce, me.id, body.peer.id) }) });
  return c;
}

/**
 * A fake peer on `t`'s cluster port that completes the handshake as `me`
 * with `secret`, by hand (the dialer's side); resolves once `t` holds the
 * link up. The caller closes it.
 */
export async function fakePeer(t: TestNode, me: PeerInfo, secret: string): Promise<RawClient> {
  const c = await rawPeer(t.cluster.port, me, secret);
  // Any kind of link: a peer's, a leaf's (me.leaf), a gateway's (me.gateway).
  await until(() => t.cluster.peers().some((p) => p.id === me.id && p.state === 'up'), 'fake peer authenticated');
  return c;
}

/**
 * Node P with a small link bound (maxPending 256 KiB, maxStall 200 ms) and a
 * raw peer on it that subscribed to `topic`, then stopped reading. The peer
 * gives a cluster address nobody listens on, so P never links back (partial
 * mesh); link pings are far apart, so the stopped peer is not found stale
 * before its queue fills (a flake on a loaded machine). The caller stops P
 * and closes the peer.
 */
export async function stoppedPeer(topic: string): Promise<{ p: TestNode; peer: RawClient; id: string }> {
  const p = await startMeshNode({ mode: 'partial', maxPending: 256 * 1024, pingInterval: 60_000 }, 'p', { maxStall: 200 });
  const id = randomBytes(8).toString('hex');
  const peer = await rawPeer(p.cluster.port, { id, name: 'stuck', cluster: '127.0.0.1:1', client: '127.0.0.1:1' });
  await until(() => p.cluster.peers().some((x) => x.id === id && x.state === 'up'), 'the raw peer is up');
  peer.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, topic, null, 1]] }) });
  await until(() => remoteInterest(p) > 0, "the peer's interest at P");
  peer.pauseReading();
  return { p, peer, id };
}

/** The id the hub announced to `c` for (`pattern`, `queue`): what a copy handed back names in its sid. */
export async function announced(c: RawClient, pattern: string, queue: string): Promise<number> {
  let id = 0;
  await until(() => {
    for (const g of c.got) {
      if (g.type !== FrameType.INTEREST) continue;
      for (const [n, p, q] of (decodeBody(g.payload) as { add?: Array<[number, string, string | null]> }).add ?? []) if (p === pattern && q === queue) id = n;
    }
    return id > 0;
  }, `the hub's interest in ${pattern} (${queue})`);
  return id;
}

/**
 * What a connection can make a node log is bounded by the node, not by what
 * the connection sends. A refusal said "once per address and way of failing
 * every 5 min" was keyed by its message, and the message quoted a node id the
 * connection chose: a fresh id per connection (or per PEERS frame) was a
 * fresh key, so a line each (200 unauthenticated connections: 200 warnings).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { silentLogger, startNode, type Logger } from '@meshbus/core';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import { ClusterNode, type PeerInfo } from '../src/index.js';
import { newNonce } from '../src/peer-auth.js';
import { fakePeer, remoteInterest, stopMeshNode, type TestNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';

const cleanup = cleanups();

async function node(opts: { maxPeerInterest?: number } = {}): Promise<TestNode & { lines: Array<{ msg: string; o: Record<string, unknown> }> }> {
  const lines: Array<{ msg: string; o: Record<string, unknown> }> = [];
  const rec = (o: object, msg?: string): void => void lines.push({ msg: msg ?? '', o: o as Record<string, unknown> });
  const logger: Logger = { ...silentLogger, warn: rec, error: rec };
  const n = await startNode({ port: 0, logger, name: 'a' });
  const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, pingInterval: 5000, ...opts }).start();
  const t = { node: n, cluster, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${cluster.port}`, lines };
  cleanup.push(() => stopMeshNode(t));
  return t;
}

const freshId = (): string => randomBytes(8).toString('hex');

describe('log lines a hostile connection can cause', () => {
  it('connections that never authenticate, each with bad peer info under a fresh node id: one warning per address and code', async () => {
    const a = await node();
    const bad: Array<(id: string) => Record<string, unknown>> = [
      (id) => ({ id, name: 5, cluster: '127.0.0.1:1', client: '127.0.0.1:2' }),
      (id) => ({ id, name: 'x', cluster: 'nope', client: '127.0.0.1:2' }),
      (id) => ({ id, name: 'x', cluster: '127.0.0.1:1', client: '127.0.0.1:2', maxPayload: -1 }),
    ];
    for (let i = 0; i < 60; i++) {
      const c = await RawClient.connect(a.cluster.port, false);
      c.send({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], peer: bad[i % bad.length]!(freshId()), nonce: newNonce() }) });
      await c.waitFor((g) => g.error === 'MB_ERR_BAD_PEER_INFO');
      c.close();
    }
    const closing = a.lines.filter((l) => l.msg === 'closing peer link');
    expect(closing).toHaveLength(1);
    expect(closing[0]!.o.code).toBe('MB_ERR_BAD_PEER_INFO');
  });

  it('an authenticated peer gossiping a fresh bad entry in every PEERS frame: one warning', async () => {
    const a = await node();
    const me: PeerInfo = { id: 'feedfacefeedface', name: 'gossiper', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };
    const g = await fakePeer(a, me, SECRET);
    cleanup.push(() => g.close());
    for (let i = 0; i < 40; i++) {
      g.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [{ id: freshId(), name: 7, cluster: '127.0.0.1:1', client: '127.0.0.1:1' }], links: [] }) });
    }
    await g.flush();
    // Each frame is still answered (the sender hears what was refused); only the log line is bounded.
    await until(() => g.got.filter((f) => f.error === 'MB_ERR_BAD_PEER_INFO').length === 40, 'every refusal answered');
    expect(a.lines.filter((l) => l.msg.startsWith('refused gossiped peer info'))).toHaveLength(1);
  });

  it('an authenticated peer sending a frame the node rejects, again and again: one line a minute per peer and code', async () => {
    const a = await node();
    const me: PeerInfo = { id: 'badf00dbadf00d00', name: 'garbler', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };
    const g = await fakePeer(a, me, SECRET);
    cleanup.push(() => g.close());
    // Not msgpack: each INTEREST body fails to decode.
    for (let i = 0; i < 50; i++) g.send({ type: FrameType.INTEREST, payload: Buffer.from([0xc1, i]) });
    await g.flush();
    await until(() => a.lines.some((l) => l.msg === 'peer frame rejected'), 'a rejection logged');
    // The link stays up and still routes: what it sends next is read.
    g.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[1, 'after.garbage', null, 1]] }) });
    await until(() => remoteInterest(a) > 0, 'the link still read');
    expect(a.lines.filter((l) => l.msg === 'peer frame rejected')).toHaveLength(1);
  });

  it('a peer sending interest past maxPeerInterest in frame after frame: one line, and the refusal still answered each time', async () => {
    const a = await node({ maxPeerInterest: 4 });
    const me: PeerInfo = { id: 'f111f111f111f111', name: 'filler', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };
    const g = await fakePeer(a, me, SECRET);
    cleanup.push(() => g.close());
    for (let i = 0; i < 30; i++) g.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [[2 * i + 1, `fill.${i}.a`, null, 1], [2 * i + 2, `fill.${i}.b`, null, 1]] }) });
    await g.flush();
    await until(() => g.got.filter((f) => f.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS').length === 28, 'every refusal answered', 5000).catch(() => { throw new Error(JSON.stringify(g.got.map((f) => f.error ?? f.type)) + JSON.stringify(a.lines)); });
    expect(a.lines.filter((l) => l.msg === 'peer interest past maxPeerInterest refused')).toHaveLength(1);
  });
});

describe('kinds the node remembers per party', () => {
  it('more peers in a minute than the node remembers (1,024): another kind of line is still said, its first one', async () => {
    const a = await node({ maxPeerInterest: 4 });
    const rejected = (): number => a.lines.filter((l) => l.msg === 'peer frame rejected').length;
    for (let i = 0; i < 1_025; i++) {
      const me: PeerInfo = { id: (0x1000000000000000n + BigInt(i)).toString(16), name: `garbler-${i}`, cluster: '127.0.0.1:9', client: '127.0.0.1:9' };
      const g = await fakePeer(a, me, SECRET);
      // Not msgpack: the INTEREST body fails to decode.
      g.send({ type: FrameType.INTEREST, payload: Buffer.from([0xc1]) });
      await until(() => rejected() === i + 1, `peer ${i}'s rejection said`);
      g.close();
    }
    // Every party's first line was said, the 1,025th's too (the kind's own overflow key). Now a peer
    // past maxPeerInterest: a kind the node never said, and must.
    const me: PeerInfo = { id: 'f111f111f111f111', name: 'filler', cluster: '127.0.0.1:9', client: '127.0.0.1:9' };
    const g = await fakePeer(a, me, SECRET);
    cleanup.push(() => g.close());
    g.send({ type: FrameType.INTEREST, payload: encodeBody({ add: [1, 2, 3, 4, 5, 6].map((n) => [n, `fill.${n}`, null, 1]) }) });
    await g.waitFor((f) => f.error === 'MB_ERR_TOO_MANY_SUBSCRIPTIONS');
    expect(a.lines.filter((l) => l.msg === 'peer interest past maxPeerInterest refused')).toHaveLength(1);
  }, 120_000);
});

describe('refusals keyed per address', () => {
  it('connections from more addresses than the node remembers (1,024), each failing its handshake one way: another way of failing is still said', async () => {
    const a = await node();
    const closing = (): Array<{ msg: string; o: Record<string, unknown> }> => a.lines.filter((l) => l.msg === 'closing peer link');
    // Not meshbus at all, from 1,025 loopback addresses in turn (an IPv6 sender has as many as it likes).
    for (let i = 0; i < 1_025; i++) {
      const s = net.connect({ port: a.cluster.port, host: '127.0.0.1', localAddress: `127.1.${i >> 8}.${i & 255}` });
      s.on('error', () => {});
      s.end('GET / HTTP/1.1\r\n\r\n');
      await until(() => closing().length === i + 1, `connection ${i}'s refusal said`);
      s.destroy();
    }
    expect(new Set(closing().map((l) => l.o.code)).size).toBe(1);
    // A node that speaks meshbus, with a setting wrong: a way of failing not said yet, from an address not seen yet.
    const c = await RawClient.connect(a.cluster.port, false);
    c.send({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], peer: { id: freshId(), name: 5, cluster: '127.0.0.1:1', client: '127.0.0.1:2' }, nonce: newNonce() }) });
    await c.waitFor((g) => g.error === 'MB_ERR_BAD_PEER_INFO');
    c.close();
    expect(closing().filter((l) => l.o.code === 'MB_ERR_BAD_PEER_INFO')).toHaveLength(1);
  }, 120_000);
});

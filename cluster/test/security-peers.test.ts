/**
 * The cluster port against connections that never authenticate and peers
 * that gossip garbage (issue #13), with real sockets: pre-auth connections
 * are bounded (in total and per IP) and closed after the handshake timeout,
 * a connection that merely claims a name never shows in /v1/cluster or
 * /metrics, gossiped ids, names and addresses are checked, and a gossiped
 * address that never authenticates stops being dialled.
 */
import { rmSync } from 'node:fs';
import net from 'node:net';
import tlsModule from 'node:tls';
import { describe, expect, it } from 'vitest';
import { Flags, FrameType, decodeBody, encodeBody, encodeFrame, type FrameSpec } from '@meshbus/proto';
import { freePort, silentLogger, startNode, type Logger, type NodeOptions } from '@meshbus/core';
import { startHttp } from '@meshbus/core/http';
import { RawClient, RawFrames, tcpProxy, until, cleanups, makePki } from '@meshbus/testkit';
import { ClusterNode, type ClusterOptions, type PeerInfo } from '../src/index.js';
import { newNonce, proof } from '../src/peer-auth.js';
import { fakePeer as authenticatedPeer, startMeshNode, stopMeshNode, type TestNode } from './mesh-helpers.js';

const SECRET = 'correct horse battery';

const cleanup = cleanups();

/** A node with a cluster, stopped after the test; `lines` collects its warnings. */
async function node(opts: ClusterOptions, name = 'a', nodeOpts: NodeOptions = {}): Promise<TestNode & { lines: string[] }> {
  const lines: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (o, msg) => lines.push(`${msg ?? ''} ${JSON.stringify(o)}`) };
  const n = await startNode({ port: 0, logger, name, pingInterval: 1000, ...nodeOpts });
  const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, pingInterval: 5000, redialMin: 20, redialMax: 100, ...opts }).start();
  const t = { node: n, cluster, url: `127.0.0.1:${n.port}`, peerAddr: `127.0.0.1:${cluster.port}`, lines };
  cleanup.push(() => stopMeshNode(t));
  return t;
}

/** A raw TCP connection from `localAddress` (any 127.x address works on Linux) that says nothing. */
async function silent(port: number, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; closed: () => boolean }> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.once('error', reject);
  });
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.resume(); // read (and drop) what the node sends, so its FIN is seen
  socket.on('error', () => {});
  cleanup.push(() => void socket.destroy());
  return { socket, closed: () => closed };
}

const info = (over: Partial<PeerInfo> = {}): PeerInfo => ({ id: 'ab12cd34ef56ab78', name: 'intruder-x9', cluster: '127.0.0.1:9', client: '127.0.0.1:9', ...over });

/** A fake peer that completes the handshake with `secret` (the dialer's side, by hand). */
async function fakePeer(t: TestNode, me: PeerInfo, secret = SECRET): Promise<RawClient> {
  const c = await authenticatedPeer(t, me, secret);
  cleanup.push(() => c.close());
  return c;
}

/** RawFrames over mutual TLS (a fake peer of a TLS cluster). */
class TlsRaw extends RawFrames {
  constructor(readonly socket: tlsModule.TLSSocket) {
    super();
    socket.on('data', (c: Buffer) => this.received(c));
    socket.on('close', () => this.ended());
    socket.on('error', () => {});
  }
  send(...specs: FrameSpec[]): void {
    for (const spec of specs) this.socket.write(encodeFrame(spec));
  }
}

/** A TCP listener we control: counts connections, accepts them and never answers. */
async function blackHole(): Promise<{ addr: string; connections: () => number }> {
  let n = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    n++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  );
  return { addr: `127.0.0.1:${(srv.address() as net.AddressInfo).port}`, connections: () => n };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('connections that do not authenticate', () => {
  it('are bounded per IP and in total: past the bound they are closed at once, the others stay until the handshake timeout', async () => {
    const a = await node({ maxPreAuth: 6, maxPreAuthPerIp: 4, handshakeTimeout: 30_000 });
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await silent(a.cluster.port, '127.0.0.1'));
    await until(() => a.cluster.pendingHandshakes === 4, 'four pending handshakes');
    // A fifth from the same IP: refused.
    const overIp = await silent(a.cluster.port, '127.0.0.1');
    await until(overIp.closed, 'the fifth connection from one IP closed');
    // Another IP still gets in, up to the total bound of 6.
    for (let i = 0; i < 2; i++) held.push(await silent(a.cluster.port, '127.0.0.2'));
    await until(() => a.cluster.pendingHandshakes === 6, 'six pending handshakes');
    const overTotal = await silent(a.cluster.port, '127.0.0.3');
    await until(overTotal.closed, 'the seventh connection closed');
    expect(a.cluster.refusedConnections).toBe(2);
    expect(held.filter((h) => h.closed())).toEqual([]);
    // Logged (rate-limited: one line for the burst).
    expect(a.lines.filter((l) => l.includes('too many have not authenticated'))).toHaveLength(1);
    // A slot freed by a closed connection is free again.
    held.pop()!.socket.destroy();
    await until(() => a.cluster.pendingHandshakes === 5, 'slot freed');
    held.push(await silent(a.cluster.port, '127.0.0.4'));
    await until(() => a.cluster.pendingHandshakes === 6, 'slot taken again');
    expect(held.filter((h) => h.closed())).toEqual([]);
  });

  it('over TLS: the bound counts TCP connections that have not even started TLS, and the TLS handshake has the same timeout', async () => {
    const pki = makePki();
    cleanup.push(() => rmSync(pki.dir, { recursive: true, force: true }));
    const tls = { cert: pki.cert, key: pki.key, ca: pki.ca, requireClientCert: true };
    const a = await node({ maxPreAuth: 3, handshakeTimeout: 30_000, tls });
    const held = [];
    for (let i = 0; i < 3; i++) held.push(await silent(a.cluster.port));
    await until(() => a.cluster.pendingHandshakes === 3, 'three pending handshakes');
    const over = await silent(a.cluster.port);
    await until(over.closed, 'the fourth connection closed');
    expect(a.cluster.refusedConnections).toBe(1);
    expect(held.filter((h) => h.closed())).toEqual([]);
    const b = await node({ maxPreAuth: 3, handshakeTimeout: 300, tls }, 'b');
    const quiet = await silent(b.cluster.port);
    await until(quiet.closed, 'a connection that never starts TLS closed after the handshake timeout');
    await until(() => b.cluster.pendingHandshakes === 0, 'slot freed');
  });

  it('are closed after the handshake timeout, silent or stuck after HELLO, and free their slots', async () => {
    const a = await node({ maxPreAuth: 4, handshakeTimeout: 300 });
    const quiet = [await silent(a.cluster.port), await silent(a.cluster.port)];
    const stuck = await RawClient.connect(a.cluster.port, { peer: info(), nonce: newNonce() }); // never sends AUTH
    cleanup.push(() => stuck.close());
    for (const q of quiet) await until(q.closed, 'silent connection closed by the node');
    await stuck.waitClosed();
    await until(() => a.cluster.pendingHandshakes === 0, 'no pending handshakes');
    expect(a.cluster.refusedConnections).toBe(0);
  });

  it('may not send more than a few KiB before authenticating (a huge claimed frame is not buffered)', async () => {
    const a = await node({ handshakeTimeout: 30_000 });
    const { socket, closed } = await silent(a.cluster.port);
    // A valid frame of 900 KiB (under the node's frame limit), sent slowly in 8 KiB pieces: only
    // its first 512 KiB, so it is never complete and only the pre-auth byte bound can end it.
    const big = encodeFrame({ type: FrameType.HELLO, payload: new Uint8Array(900 * 1024) });
    for (let off = 0; off < 512 * 1024 && !closed(); off += 8 * 1024) {
      socket.write(big.subarray(off, off + 8 * 1024));
      await sleep(5);
    }
    await until(closed, 'connection closed before authenticating');
    // Ended by the pre-auth frame limit (the claimed length) or the pre-auth byte bound, whichever sees it first.
    expect(a.lines.some((l) => l.includes('MB_ERR_FRAME_TOO_LARGE'))).toBe(true);
  });
});

describe('what a connection claims before it authenticates', () => {
  it('never shows in peers(), /v1/cluster or /metrics (a HELLO without AUTH, or with a wrong proof)', async () => {
    const a = await node({ handshakeTimeout: 30_000 });
    const http = await startHttp(a.node, { port: 0, host: '127.0.0.1', cluster: a.cluster });
    cleanup.push(() => http.close());
    const claim1 = info({ id: '1111111111111111', name: 'claimed-no-auth' });
    const c1 = await RawClient.connect(a.cluster.port, { peer: claim1, nonce: newNonce() });
    cleanup.push(() => c1.close());
    expect(c1.got.some((g) => g.type === FrameType.WELCOME)).toBe(true); // the node read the claim
    const claim2 = info({ id: '2222222222222222', name: 'claimed-bad-proof' });
    const c2 = await RawClient.connect(a.cluster.port, { peer: claim2, nonce: newNonce() });
    cleanup.push(() => c2.close());
    c2.send({ type: FrameType.AUTH, payload: encodeBody({ proof: 'f'.repeat(64) }) });
    expect((await c2.waitFor((g) => g.type === FrameType.ERROR)).error).toBe('MB_ERR_AUTH_FAILED');
    expect(a.cluster.pendingHandshakes).toBe(1);

    expect(a.cluster.peers()).toEqual([]);
    expect(a.cluster.links()).toEqual([]);
    const cluster = await (await fetch(`${http.url}/v1/cluster`)).text();
    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    for (const text of [cluster, metrics]) {
      for (const s of ['claimed-no-auth', 'claimed-bad-proof', claim1.id, claim2.id]) expect(text).not.toContain(s);
    }
    expect(metrics).toContain('meshbus_connections{kind="peer"} 0');
  });

  it('a HELLO with a malformed id, name or address is refused with MB_ERR_BAD_PEER_INFO', async () => {
    const a = await node({});
    const bad: Array<Partial<PeerInfo> | Record<string, unknown>> = [
      { id: 'NOT-A-NODE-ID!!!' },
      { id: 'ab12cd34ef56ab7' },
      { name: 'x'.repeat(65) },
      { name: 'evil\u001b[31mred' },
      { name: 42 },
      { cluster: 'no-port' },
      { cluster: '127.0.0.1:70000' },
      { client: '' },
      { client: 'a b:1' },
    ];
    const reasons = new Set<string>();
    for (const over of bad) {
      const c = await RawClient.connect(a.cluster.port, { peer: { ...info(), ...over }, nonce: newNonce() });
      cleanup.push(() => c.close());
      const g = await c.waitFor((x) => x.type === FrameType.ERROR || x.type === FrameType.WELCOME);
      expect(g.error, JSON.stringify(over)).toBe('MB_ERR_BAD_PEER_INFO');
      reasons.add(String(decodeBody(g.payload).message));
      await c.waitClosed();
    }
    // Each refusal is answered with its own reason; the log says it once per address and code
    // (the reasons quote what the connection sent: cluster/test/log-flood.test.ts).
    expect(reasons.size).toBeGreaterThan(3);
    expect(a.lines.filter((l) => l.includes('MB_ERR_BAD_PEER_INFO'))).toHaveLength(1);
    expect(a.cluster.peers()).toEqual([]);
  });
});

describe('this node\'s own info passes the checks its peers make', () => {
  it('a node on an IPv6 address advertises [host]:port and links with a node that dials it there', async () => {
    const a = await node({ host: '::1' });
    expect(a.cluster.self.cluster).toBe(`[::1]:${a.cluster.port}`);
    const b = await node({ seeds: [a.cluster.self.cluster] }, 'b');
    await until(() => a.cluster.link(b.node.id)?.state === 'up' && b.cluster.link(a.node.id)?.state === 'up', 'IPv6 link up');
  });

  it('a node name its peers would refuse is a ConfigError at start', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, name: 'bad\u0000name' });
    cleanup.push(() => n.close());
    expect(() => new ClusterNode(n, { port: 0 })).toThrow(/node name cannot be used in a cluster/);
  });
});

describe('gossip', () => {
  it('a peer that keeps gossiping a refused entry (every 5 s) is answered each time but logged once, on both ends (was: a warning per PEERS frame on each end, forever)', async () => {
    const a = await node({});
    const me = info({ id: 'feedfacefeedfac1', name: 'gossiper' });
    const g = await fakePeer(a, me);
    const frame = { type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [info({ id: 'BOGUS-ID', name: 'bogus-1' })], links: [] }) };
    for (let i = 1; i <= 4; i++) {
      g.send(frame);
      await until(() => g.got.filter((x) => x.type === FrameType.ERROR).length >= i, 'answered');
    }
    expect(a.lines.filter((l) => l.includes('refused gossiped peer info'))).toHaveLength(1);
    // The other end: a node told the same error again and again by a peer.
    for (let i = 0; i < 4; i++) g.send({ type: FrameType.ERROR, payload: encodeBody({ code: 2060, message: `${i + 1} gossiped peer entries refused` }) });
    await g.flush();
    await until(() => a.lines.some((l) => l.startsWith('peer reported an error')), 'logged');
    await new Promise((r) => setTimeout(r, 100));
    expect(a.lines.filter((l) => l.startsWith('peer reported an error'))).toHaveLength(1);
    expect(a.cluster.link(me.id)?.state).toBe('up');
  });

  it('the same refused HELLO from one address, again and again (a misconfigured node redialing), is logged once, not once per attempt', async () => {
    const a = await node({});
    for (let i = 0; i < 6; i++) {
      const c = await RawClient.connect(a.cluster.port, { peer: { ...info(), id: 'NOT-A-NODE-ID!!!' }, nonce: newNonce() });
      cleanup.push(() => c.close());
      expect((await c.waitFor((x) => x.type === FrameType.ERROR)).error).toBe('MB_ERR_BAD_PEER_INFO');
      await c.waitClosed();
    }
    expect(a.lines.filter((l) => l.includes('MB_ERR_BAD_PEER_INFO'))).toHaveLength(1);
  });

  it('bogus ids, names and addresses are refused (ERROR to the sender, logged); valid entries are kept and dialled', async () => {
    const a = await node({});
    const http = await startHttp(a.node, { port: 0, host: '127.0.0.1', cluster: a.cluster });
    cleanup.push(() => http.close());
    const target = await blackHole();
    const me = info({ id: 'feedfacefeedface', name: 'gossiper' });
    const g = await fakePeer(a, me);
    const good = info({ id: '0123456789abcdef', name: 'good-node', cluster: target.addr });
    const bogus = [
      info({ id: 'BOGUS-ID', name: 'bogus-1' }),
      info({ id: '0000000000000001', name: 'bogus-2', cluster: 'not-an-address' }),
      info({ id: '0000000000000002', name: 'bogus-3', cluster: '127.0.0.1:0' }),
      info({ id: '0000000000000003', name: 'bogus-4\u0007' }),
      info({ id: '0000000000000004', name: 'bogus-5', client: 'x'.repeat(300) }),
    ];
    g.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [...bogus, good], links: ['<script>', '0000000000000001', good.id] }) });
    const err = await g.waitFor((x) => x.type === FrameType.ERROR);
    expect(err.error).toBe('MB_ERR_BAD_PEER_INFO');
    expect(String(decodeBody(err.payload).message)).toContain('5 gossiped peer entries refused');
    await until(() => target.connections() > 0, 'the valid gossiped address dialled');

    const ids = a.cluster.peers().map((p) => p.id).sort();
    expect(ids).toEqual([good.id, me.id].sort());
    const view = (await (await fetch(`${http.url}/v1/cluster`)).json()) as { nodes: Array<{ id: string; name: string }> };
    expect(view.nodes.map((n) => n.id).sort()).toEqual([a.node.id, good.id, me.id, '0000000000000001'].sort());
    expect(view.nodes.map((n) => n.name)).not.toContain('bogus-2');
    const metrics = await (await fetch(`${http.url}/metrics`)).text();
    for (const b of bogus) expect(metrics).not.toContain(b.name);
    expect(metrics).not.toContain('<script>');
    expect(a.lines.filter((l) => l.includes('refused gossiped peer info'))).toHaveLength(1);
    // The link with the gossiping peer stays up.
    expect(a.cluster.link(me.id)?.state).toBe('up');
  });

  it('a gossiped address that accepts connections but never authenticates is given up after redialGiveUp attempts, logged once', async () => {
    const a = await node({ redialGiveUp: 3, handshakeTimeout: 150 });
    const hole = await blackHole();
    const me = info({ id: 'feedfacefeedface', name: 'gossiper' });
    const g = await fakePeer(a, me);
    const announce = (): void =>
      g.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [info({ id: '0123456789abcdef', name: 'hole', cluster: hole.addr })], links: [] }) });
    announce();
    await until(() => a.lines.some((l) => l.includes('gave up dialing')), 'gave up', 15_000);
    const dialled = hole.connections();
    expect(dialled).toBeGreaterThanOrEqual(3);
    expect(dialled).toBeLessThanOrEqual(4);
    // Told again (gossip repeats): still not dialled. Long enough for many redials at redialMax 100 ms.
    for (let i = 0; i < 5; i++) {
      announce();
      await g.flush();
      await sleep(200);
    }
    expect(hole.connections()).toBe(dialled);
    expect(a.lines.filter((l) => l.includes('gave up dialing'))).toHaveLength(1);
    expect(a.lines.find((l) => l.includes('gave up dialing'))).toContain(hole.addr);
  });

  it('a gossiped node that refuses our secret is given up at once', async () => {
    const a = await node({ redialGiveUp: 20, handshakeTimeout: 2000 });
    const other = await startMeshNode({ secret: 'another secret value' }, 'other');
    cleanup.push(() => stopMeshNode(other));
    // Count dials through a TCP proxy we control in front of it.
    const proxy = await tcpProxy(other.cluster.port);
    cleanup.push(() => proxy.close());
    const proxied = proxy.addr;
    const me = info({ id: 'feedfacefeedface', name: 'gossiper' });
    const g = await fakePeer(a, me);
    g.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [info({ id: other.node.id, name: 'other', cluster: proxied })], links: [] }) });
    await until(() => a.lines.some((l) => l.includes('gave up dialing')), 'gave up');
    expect(a.lines.find((l) => l.includes('gave up dialing'))).toContain('MB_ERR_AUTH_FAILED');
    const after = proxy.dials();
    expect(after).toBeLessThanOrEqual(2);
    for (let i = 0; i < 5; i++) {
      await g.flush();
      await sleep(200);
    }
    expect(proxy.dials()).toBe(after);
  });

  it('a node dialing with another secret: the node it dialed logs the refusal too (once per address), not only the dialer (newcomer review: the seed said nothing)', async () => {
    const seed = await node({});
    await node({ secret: 'another secret value', seeds: [seed.peerAddr] }, 'b');
    await until(() => seed.lines.some((l) => l.includes('MB_ERR_AUTH_FAILED')), "the seed's line", 10_000);
    const line = seed.lines.find((l) => l.includes('MB_ERR_AUTH_FAILED'))!;
    expect(line).toContain('closing peer link');
    expect(line).toContain('refused by the node that dialed: peer failed the cluster secret challenge');
    // The dialer redials; the seed's line is not repeated per attempt.
    await sleep(600);
    expect(seed.lines.filter((l) => l.includes('MB_ERR_AUTH_FAILED'))).toHaveLength(1);
  });

  it('two nodes of one name are said at warn, once (newcomer review: accepted without a word; logs and traces name hops by it)', async () => {
    const a = await node({}, 'twin');
    await node({ seeds: [a.peerAddr] }, 'twin');
    await until(() => a.lines.some((l) => l.includes('two nodes of the mesh have one name')), 'the warning', 10_000);
    expect(a.lines.filter((l) => l.includes('two nodes of the mesh have one name'))).toHaveLength(1);
    // Unnamed nodes (the default, '') are not namesakes.
    const u = await node({}, '');
    await node({ seeds: [u.peerAddr] }, '');
    await until(() => u.cluster.peers().some((p) => p.state === 'up'), 'the unnamed nodes to link', 10_000);
    expect(u.lines.some((l) => l.includes('two nodes of the mesh have one name'))).toBe(false);
  });

  it("a seed that is a node's client port is named as one (was: \"peer info is not a map\")", async () => {
    const target = await node({});
    const dialer = await node({ seeds: [target.url] }, 'b');
    await until(() => dialer.lines.some((l) => l.includes('MB_ERR_BAD_PEER_INFO')), "the dialer's line", 10_000);
    expect(dialer.lines.find((l) => l.includes('MB_ERR_BAD_PEER_INFO'))).toContain("answered as a node's client port, not its cluster port");
  });

  it('over TLS: a gossiped address where TLS never completes is a failed attempt, and is given up', async () => {
    const pki = makePki();
    cleanup.push(() => rmSync(pki.dir, { recursive: true, force: true }));
    const a = await node({ redialGiveUp: 2, handshakeTimeout: 200, tls: { cert: pki.cert, key: pki.key, ca: pki.ca, requireClientCert: true } });
    const hole = await blackHole();
    const socket = await new Promise<tlsModule.TLSSocket>((resolve, reject) => {
      const s = tlsModule.connect({ host: '127.0.0.1', port: a.cluster.port, ca: pki.ca, cert: pki.cert2, key: pki.key2 }, () => resolve(s));
      s.once('error', reject);
    });
    const g = new TlsRaw(socket);
    cleanup.push(() => void socket.destroy());
    const me = info({ id: 'feedfacefeedface', name: 'gossiper' });
    const nonce = newNonce();
    g.send({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], peer: me, nonce }) });
    const w = decodeBody((await g.waitFor((x) => x.type === FrameType.WELCOME)).payload) as { nonce: string; peer: PeerInfo };
    g.send({ type: FrameType.AUTH, payload: encodeBody({ proof: proof(SECRET, 'dialer', nonce, w.nonce, me.id, w.peer.id) }) });
    await until(() => a.cluster.link(me.id)?.state === 'up', 'fake TLS peer authenticated');
    g.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: [info({ id: '0123456789abcdef', name: 'hole', cluster: hole.addr })], links: [] }) });
    await until(() => a.lines.some((l) => l.includes('gave up dialing')), 'gave up');
    const dialled = hole.connections();
    expect(dialled).toBeGreaterThanOrEqual(2);
    expect(dialled).toBeLessThanOrEqual(3);
    for (let i = 0; i < 4; i++) {
      await g.flush();
      await sleep(200);
    }
    expect(hole.connections()).toBe(dialled);
  });

  it('keeps at most maxKnownPeers gossiped nodes', async () => {
    const a = await node({ maxKnownPeers: 5, mode: 'partial' });
    const me = info({ id: 'feedfacefeedface', name: 'gossiper' });
    const g = await fakePeer(a, me);
    const many = Array.from({ length: 50 }, (_, i) => info({ id: `10000000000000${i.toString(16).padStart(2, '0')}`, name: `n${i}`, cluster: `127.0.0.1:${1000 + i}` }));
    g.send({ type: FrameType.PEERS, payload: encodeBody({ from: me.id, peers: many, links: many.map((p) => p.id) }) });
    await g.flush();
    await until(() => a.cluster.peers().length > 1, 'gossip read');
    expect(a.cluster.peers().length).toBeLessThanOrEqual(5);
    expect(a.cluster.links().length).toBeLessThanOrEqual(1 + 5);
    expect(a.lines.filter((l) => l.includes('more nodes than maxKnownPeers'))).toHaveLength(1);
  });
});

describe('a seed that keeps failing', () => {
  it('is said once per way of failing, not once per redial, and once more when it links (was: a warning every redial, forever)', async () => {
    const all: Array<{ level: string; msg: string; o: Record<string, unknown> }> = [];
    const rec = (level: string) => (o: object, msg?: string) => void all.push({ level, msg: msg ?? '', o: o as Record<string, unknown> });
    const logger: Logger = { ...silentLogger, info: rec('info'), warn: rec('warn'), error: rec('error') };
    const wrong = await startMeshNode({ secret: 'another secret value' }, 'wrong');
    cleanup.push(() => stopMeshNode(wrong));
    const right = await startMeshNode({ secret: SECRET }, 'right');
    cleanup.push(() => stopMeshNode(right));
    // The seed is a proxy: first to the node with another secret, then to one with ours.
    let to = wrong.cluster.port;
    const proxy = await tcpProxy(() => to);
    cleanup.push(() => proxy.close());
    const seed = proxy.addr;
    const n = await startNode({ port: 0, logger, name: 'a', pingInterval: 1000 });
    const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, pingInterval: 5000, redialMin: 20, redialMax: 60, seeds: [seed] }).start();
    cleanup.push(() => stopMeshNode({ node: n, cluster, url: '', peerAddr: '' }));
    await until(() => proxy.dials() >= 8, 'redialed many times', 15_000);
    const about = (): typeof all => all.filter((l) => l.level !== 'info' && JSON.stringify(l).includes(seed));
    expect(about()).toHaveLength(1);
    expect(about()[0].level).toBe('error');
    expect(String(about()[0].o.reason)).toContain('MB_ERR_AUTH_FAILED');
    // It says what to do (a newcomer review: "peer failed the cluster secret challenge" alone did not).
    expect(String(about()[0].o.reason)).toContain('every node of a mesh needs the same --cluster-secret (this node has one)');
    expect(all.filter((l) => l.msg === 'closing peer link')).toHaveLength(0);
    to = right.cluster.port;
    await until(() => cluster.peers().some((p) => p.id === right.node.id && p.state === 'up'), 'linked once the seed takes our secret', 15_000);
    const linked = all.filter((l) => l.level === 'info' && l.msg.startsWith(`linked to ${seed} after`));
    expect(linked).toHaveLength(1);
    expect(Number(linked[0].o.attempts)).toBeGreaterThanOrEqual(8);
  });
});

describe('a seed that fails two ways in turn', () => {
  it('is said once per way, not at every redial (was: each change of way was news, so a seed behind a balancer alternating between a node refusing our secret and a dead backend logged every attempt)', async () => {
    const all: Array<{ level: string; msg: string; o: Record<string, unknown> }> = [];
    const rec = (level: string) => (o: object, msg?: string) => void all.push({ level, msg: msg ?? '', o: o as Record<string, unknown> });
    const logger: Logger = { ...silentLogger, info: rec('info'), warn: rec('warn'), error: rec('error') };
    const wrong = await startMeshNode({ secret: 'another secret value' }, 'wrong');
    cleanup.push(() => stopMeshNode(wrong));
    const dead = await freePort();
    // A round-robin balancer over two backends: one refuses our secret, one is down (the balancer closes the socket).
    const proxy = await tcpProxy((n) => (n % 2 === 0 ? wrong.cluster.port : dead));
    cleanup.push(() => proxy.close());
    const seed = proxy.addr;
    const n = await startNode({ port: 0, logger, name: 'a', pingInterval: 1000 });
    const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, pingInterval: 5000, redialMin: 20, redialMax: 60, seeds: [seed] }).start();
    cleanup.push(() => stopMeshNode({ node: n, cluster, url: '', peerAddr: '' }));
    await until(() => proxy.dials() >= 12, 'redialed many times', 15_000);
    const about = all.filter((l) => l.level !== 'info' && JSON.stringify(l).includes(seed));
    const reasons = about.map((l) => String(l.o.reason));
    expect(reasons.some((r) => r.includes('MB_ERR_AUTH_FAILED'))).toBe(true);
    expect(reasons.some((r) => !r.includes('MB_ERR_AUTH_FAILED'))).toBe(true);
    expect(about).toHaveLength(2);
  });
});

describe("a leaf's hubs", () => {
  it('a hub that stays down is not said to have linked when another hub does (was: "linked to <dead hub>" at info level)', async () => {
    const all: Array<{ level: string; msg: string; o: Record<string, unknown> }> = [];
    const rec = (level: string) => (o: object, msg?: string) => void all.push({ level, msg: msg ?? '', o: o as Record<string, unknown> });
    const logger: Logger = { ...silentLogger, info: rec('info'), warn: rec('warn'), error: rec('error') };
    const hub = await startMeshNode({ secret: SECRET }, 'hub');
    cleanup.push(() => stopMeshNode(hub));
    const dead = `127.0.0.1:${await freePort()}`;
    // The live hub is reached through a proxy that forwards only once the dead hub was said to fail.
    let to = await freePort();
    const proxy = await tcpProxy(() => to);
    cleanup.push(() => proxy.close());
    const live = proxy.addr;
    const n = await startNode({ port: 0, logger, name: 'leaf', pingInterval: 1000 });
    const cluster = await new ClusterNode(n, { port: 0, secret: SECRET, mode: 'leaf', pingInterval: 5000, redialMin: 20, redialMax: 60, seeds: [dead, live] }).start();
    cleanup.push(() => stopMeshNode({ node: n, cluster, url: '', peerAddr: '' }));
    await until(() => all.some((l) => l.msg.startsWith(`cannot link to ${dead}`)) && all.some((l) => l.msg.startsWith(`cannot link to ${live}`)), 'both hubs said to fail', 15_000);
    to = hub.cluster.port;
    await until(() => cluster.peers().some((p) => p.id === hub.node.id && p.state === 'up'), 'linked to the live hub', 15_000);
    expect(all.filter((l) => l.msg.startsWith(`linked to ${live} after`))).toHaveLength(1);
    expect(all.filter((l) => l.msg.startsWith(`linked to ${dead}`))).toHaveLength(0);
  });
});

describe('a seed whose link is refused as a topology', () => {
  /** A logger keeping every line. */
  const logs = (): { all: Array<{ level: string; msg: string }>; logger: Logger } => {
    const all: Array<{ level: string; msg: string }> = [];
    const rec = (level: string) => (o: object, msg?: string) => void all.push({ level, msg: `${msg ?? ''} ${JSON.stringify(o)}` });
    return { all, logger: { ...silentLogger, info: rec('info'), warn: rec('warn'), error: rec('error') } };
  };
  const refusals = (all: Array<{ level: string; msg: string }>): string[] => all.filter((l) => l.level !== 'info' && /topolog|closing peer link/i.test(l.msg)).map((l) => l.msg);

  it('is said once on each end, not at every redial (was: both ends wrote two lines each redial, forever: 48 in 1.5 s)', async () => {
    const la = logs();
    const na = await startNode({ port: 0, logger: la.logger, name: 'full', pingInterval: 1000 });
    const full = await new ClusterNode(na, { port: 0, secret: SECRET, pingInterval: 5000 }).start();
    cleanup.push(() => stopMeshNode({ node: na, cluster: full, url: '', peerAddr: '' }));
    // A partial-mesh node seeded with a full-mesh one: refused by both ends (events would arrive twice).
    const lb = logs();
    const nb = await startNode({ port: 0, logger: lb.logger, name: 'partial', pingInterval: 1000 });
    const proxy = await tcpProxy(full.port);
    cleanup.push(() => proxy.close());
    const seed = proxy.addr;
    const partial = await new ClusterNode(nb, { port: 0, secret: SECRET, mode: 'partial', pingInterval: 5000, redialMin: 20, redialMax: 60, seeds: [seed] }).start();
    cleanup.push(() => stopMeshNode({ node: nb, cluster: partial, url: '', peerAddr: '' }));
    await until(() => proxy.dials() >= 8, 'redialed many times', 15_000);
    await until(() => refusals(la.all).length >= 1 && refusals(lb.all).length >= 1, 'both ends said it');
    expect(refusals(la.all)).toHaveLength(1);
    expect(refusals(lb.all)).toHaveLength(1);
    expect(refusals(lb.all)[0]).toContain('a partial-mesh node and a full-mesh node cannot link');
  });
});

describe('traces across two nodes (issue #13: a seen trace id reused)', () => {
  const traced = (topic: string, id: string, correlation = 0): FrameSpec => ({ type: FrameType.PUB, topic, correlation, flags: Flags.TRACE, ext: { trace: id }, payload: Buffer.from('t') });
  const interestIn = (t: TestNode, pattern: string): boolean => {
    let found = false;
    t.node.table.forEach((s) => {
      if (s.owner.kind === 'peer' && s.pattern === pattern) found = true;
    });
    return found;
  };

  it('a receiver on the other node that learned the id gets none of the records and cannot add hops to them', async () => {
    const a = await node({}, 'a');
    const b = await node({ seeds: [a.peerAddr] }, 'b');
    await until(() => a.cluster.link(b.node.id)?.state === 'up' && b.cluster.link(a.node.id)?.state === 'up', 'a-b link up');
    const tracer = await RawClient.connect(a.node.port);
    const sink = await RawClient.connect(b.node.port);
    const snoop = await RawClient.connect(a.node.port);
    cleanup.push(() => tracer.close(), () => sink.close(), () => snoop.close());
    const id = '5eed5eed5eed5eed';
    tracer.sub(`_TRACE.${id}`, 1);
    sink.sub('orders.>', 1);
    await until(() => interestIn(b, `_TRACE.${id}`) && interestIn(a, 'orders.>'), 'interest exchanged');

    tracer.send(traced('orders.new', id));
    const ev = await sink.waitFor((g) => g.topic === 'orders.new');
    expect(ev.trace).toBe(id);
    await tracer.waitFor(() => tracer.events(`_TRACE.${id}`).length === 2);
    const hops = tracer.events(`_TRACE.${id}`).map((g) => decodeBody(g.payload));
    expect(hops.map((h) => h.node).sort()).toEqual([a.node.id, b.node.id].sort());
    for (const h of hops) {
      expect(h.origin).toBe(a.node.id);
      // Node ids and counts, no client: the sink's id is nowhere in what the tracer got.
      expect(JSON.stringify(h)).not.toContain(sink.clientId);
    }

    // The sink, on node b, uses the id it saw: subscribes to the records there (b has no
    // owner for it yet, so that is its own trace on b) and publishes traced events with it.
    sink.sub(`_TRACE.${id}`, 2);
    await until(() => interestIn(a, `_TRACE.${id}`), 'the sink\'s trace interest reached a');
    sink.send(traced('orders.fake', id, 51));
    await sink.waitFor((g) => g.topic === `_TRACE.${id}`);
    // A client of node a that learned the id: refused there, where the tracer owns it.
    snoop.sub(`_TRACE.${id}`, 3);
    snoop.send(traced('orders.fake', id, 52));
    await snoop.flush();
    expect(snoop.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.error, g.correlation])).toEqual([
      ['MB_ERR_PERMISSION_DENIED', 3],
      ['MB_ERR_PERMISSION_DENIED', 52],
    ]);

    // The tracer traces again: the sink receives none of those records, and the tracer none of the sink's.
    tracer.send(traced('orders.new', id));
    await sink.waitFor(() => sink.events('orders.new').length === 2);
    await tracer.waitFor(() => tracer.events(`_TRACE.${id}`).length === 4);
    // A sentinel behind a's record on the a→b link (and b's own, delivered when b routed the event).
    tracer.pub('orders.end', 'x');
    await sink.waitFor((g) => g.topic === 'orders.end');
    await tracer.flush();
    const mine = tracer.events(`_TRACE.${id}`).map((g) => decodeBody(g.payload));
    expect(mine.length).toBe(4);
    expect(mine.map((h) => h.topic)).not.toContain('orders.fake');
    const theirs = sink.events(`_TRACE.${id}`).map((g) => decodeBody(g.payload));
    expect(theirs.map((h) => h.topic)).toEqual(['orders.fake']);
    expect(theirs[0]!.origin).toBe(b.node.id);
  });
});

describe('failed cluster-secret proofs (issue #13: AUTH not rate-limited)', () => {
  it('an address that keeps failing the challenge is refused with MB_ERR_AUTH_THROTTLED; the right secret works again after the window', async () => {
    const a = await node({ handshakeTimeout: 5000 }, 'a', { authThrottle: { maxFailures: 4, windowMs: 4000 } });
    const me = info({ id: 'feedfacefeedface', name: 'guesser' });
    const guess = async (secret: string): Promise<string | undefined> => {
      const nonce = newNonce();
      const c = await RawClient.connect(a.cluster.port, { peer: me, nonce });
      cleanup.push(() => c.close());
      const first = c.got.find((g) => g.type === FrameType.WELCOME || g.type === FrameType.ERROR)!;
      if (first.type === FrameType.ERROR) {
        await c.waitClosed();
        return first.error;
      }
      const body = decodeBody(first.payload) as { nonce: string; peer: PeerInfo };
      c.send({ type: FrameType.AUTH, payload: encodeBody({ proof: proof(secret, 'dialer', nonce, body.nonce, me.id, body.peer.id) }) });
      await c.waitClosed().catch(() => {});
      const err = c.got.find((g) => g.type === FrameType.ERROR);
      return err?.error ?? (a.cluster.link(me.id)?.state === 'up' ? 'up' : undefined);
    };
    const t = a.node.authThrottle;
    const results: Array<string | undefined> = [];
    for (let i = 0; i < t.maxFailures + 2; i++) results.push(await guess(`wrong ${i}`));
    expect(results.slice(0, t.maxFailures)).toEqual(Array(t.maxFailures).fill('MB_ERR_AUTH_FAILED'));
    expect(results.slice(t.maxFailures)).toEqual(['MB_ERR_AUTH_THROTTLED', 'MB_ERR_AUTH_THROTTLED']);
    expect(t.refused.peer).toBe(2);
    expect(t.failures.peer).toBe(t.maxFailures);
    // Throttled: even the right secret is refused unchecked while the window lasts...
    expect(await guess(SECRET)).toBe('MB_ERR_AUTH_THROTTLED');
    // ...and works once it has passed (the bucket refilled).
    await sleep(t.windowMs + 100);
    await fakePeer(a, me);
    expect(a.cluster.link(me.id)?.state).toBe('up');
    const http = await startHttp(a.node, { port: 0, adminToken: 'x' });
    cleanup.push(() => http.close());
    const metrics = await (await fetch(`http://127.0.0.1:${http.port}/metrics`)).text();
    expect(metrics).toContain('meshbus_auth_throttled_total{path="peer"} 3');
    expect(metrics).toContain(`meshbus_auth_failed_attempts_total{path="peer"} ${t.maxFailures}`);
  });
});

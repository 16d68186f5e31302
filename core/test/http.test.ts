import { connect } from 'node:net';
import { describe, expect, it, vi } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { nodeKit, type RawClient } from '@meshbus/testkit';
import { TopicCounter, silentLogger, startNode, type MeshNode, type ClusterView, type NodeOptions, type PeerView } from '../src/index.js';
import { startHttp, type HttpOptions, type HttpServer } from '../src/http/index.js';
import { classify, httpStatus } from '../src/http/http-errors.js';
import { EventTap, nodeWithHttp, parseProm, type NodeWithHttp } from './http-helpers.js';

const kit = nodeKit({ start: startNode });

const setup = (nodeOpts?: NodeOptions, httpOpts?: HttpOptions): Promise<NodeWithHttp> => nodeWithHttp(kit, nodeOpts, httpOpts);
const client = (n: MeshNode): Promise<RawClient> => kit.raw(n);

const json = async (r: Response): Promise<any> => JSON.parse(await r.text());
/** Payloads go as bytes: the API refuses form, text/plain and missing content types (CORS simple requests). */
const BIN = { 'content-type': 'application/octet-stream' };

describe('health and readiness', () => {
  it('answers /healthz and /readyz through inject and over a real socket', async () => {
    const { node, http } = await setup();
    const h = await http.app.inject({ method: 'GET', url: '/healthz' });
    expect(h.statusCode).toBe(200);
    expect(h.json()).toEqual({ status: 'ok', id: node.id });
    const r = await fetch(`${http.url}/readyz`);
    expect(r.status).toBe(200);
    expect(await json(r)).toMatchObject({ ready: true, listening: true, joined: true, draining: false });
    expect((await fetch(`${http.url}/healthz`, { method: 'HEAD' })).status).toBe(200);
  });

  it('is not ready until the attached cluster has joined, and 503 while draining', async () => {
    let joined = false;
    const view: ClusterView = { ready: () => joined, peers: () => [] };
    const { node, http } = await setup({}, { cluster: view });
    const r1 = await http.app.inject({ method: 'GET', url: '/readyz' });
    expect(r1.statusCode).toBe(503);
    expect(r1.json()).toMatchObject({ error: { code: 'MB_ERR_NOT_READY' }, ready: false, joined: false, listening: true });
    joined = true;
    expect((await http.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    http.attachCluster({ ready: () => false, peers: () => [] });
    expect((await http.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(503);
    http.attachCluster(undefined);
    await node.shutdown();
    const r2 = await http.app.inject({ method: 'GET', url: '/readyz' });
    expect(r2.statusCode).toBe(503);
    expect(r2.json().error.code).toBe('MB_ERR_DRAINING');
    // Liveness is unaffected: the process is up.
    expect((await http.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const p = await http.app.inject({ method: 'POST', url: '/v1/publish/a.b', payload: 'x', headers: BIN });
    expect([p.statusCode, p.json().error.code]).toEqual([503, 'MB_ERR_DRAINING']);
  });
});

describe('JSON views', () => {
  it('/v1/node tells id, name, version, uptime, limits and the scanner', async () => {
    const { node, http } = await setup({ name: 'alpha', maxPayload: 4096 });
    const v = (await http.app.inject({ method: 'GET', url: '/v1/node' })).json();
    expect(v).toMatchObject({ id: node.id, name: 'alpha', version: '0.1.0', scanner: node.scanner.name, httpPort: http.port, address: `127.0.0.1:${node.port}` });
    expect(v.limits.maxPayload).toBe(4096);
    // The node-wide and per-host bounds an operator needs to read a refusal (a quarter of the node's per host by default).
    expect(v.limits).toMatchObject({ maxNodeSubscriptions: 1_000_000, maxSubscriptionsPerIp: 250_000, maxConnectionsPerIp: 1024 });
    expect(v.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(['js', 'native']).toContain(v.scanner);
  });

  it('/v1/cluster lists this node, the peers and links from the ClusterView', async () => {
    const peers: PeerView[] = [
      { id: 'aaaaaaaaaaaaaaaa', name: 'b', address: '127.0.0.1:7001', state: 'up', rttMs: 1.5, since: Date.now(), msgsIn: 4, msgsOut: 6 },
      { id: 'bbbbbbbbbbbbbbbb', address: '127.0.0.1:7002', state: 'connecting', since: Date.now(), msgsIn: 0, msgsOut: 0 },
    ];
    const { node, http } = await setup({ name: 'a' }, { cluster: { ready: () => true, peers: () => peers } });
    const c = (await http.app.inject({ method: 'GET', url: '/v1/cluster' })).json();
    expect(c.self).toBe(node.id);
    expect(c.clustered).toBe(true);
    expect(c.nodes.map((n: { id: string }) => n.id)).toEqual([node.id, 'aaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbb']);
    expect(c.nodes[0]).toMatchObject({ self: true, name: 'a' });
    expect(c.links).toEqual([
      { from: node.id, to: 'aaaaaaaaaaaaaaaa', state: 'up', rttMs: 1.5 },
      { from: node.id, to: 'bbbbbbbbbbbbbbbb', state: 'connecting' },
    ]);
    // A cluster layer that knows the whole mesh reports every link; nodes named only by links appear too.
    http.attachCluster({ ready: () => true, peers: () => peers, links: () => [{ from: 'aaaaaaaaaaaaaaaa', to: 'cccccccccccccccc', state: 'up' }] });
    const c2 = (await http.app.inject({ method: 'GET', url: '/v1/cluster' })).json();
    expect(c2.nodes.map((n: { id: string }) => n.id)).toContain('cccccccccccccccc');
  });

  it('/v1/connections pages through client connections', async () => {
    const { node, http } = await setup();
    const cs = [await client(node), await client(node), await client(node)];
    cs[0]!.sub('a.>', 1);
    await cs[0]!.flush();
    const p1 = (await http.app.inject({ method: 'GET', url: '/v1/connections?limit=2' })).json();
    expect([p1.total, p1.offset, p1.limit, p1.connections.length]).toEqual([3, 0, 2, 2]);
    expect(p1.connections[0]).toMatchObject({ kind: 'tcp', subscriptions: 1, open: true });
    expect(p1.connections[0].remote).toMatch(/^127\.0\.0\.1:\d+$/);
    const p2 = (await http.app.inject({ method: 'GET', url: '/v1/connections?offset=2&limit=2' })).json();
    expect(p2.connections.length).toBe(1);
    const ids = new Set([...p1.connections, ...p2.connections].map((c: { clientId: string }) => c.clientId));
    expect(ids.size).toBe(3);
    const bad = await http.app.inject({ method: 'GET', url: '/v1/connections?limit=0' });
    expect([bad.statusCode, bad.json().error.code]).toEqual([400, 'MB_ERR_INVALID_ARGUMENT']);
  });

  it('/v1/subscriptions groups by pattern with counts and queue groups', async () => {
    const { node, http } = await setup();
    const a = await client(node);
    const b = await client(node);
    a.sub('orders.>', 1);
    b.sub('orders.>', 1);
    a.sub('jobs.*', 2, { q: 'workers' });
    b.sub('jobs.*', 2, { q: 'workers' });
    await a.flush();
    await b.flush();
    const v = (await http.app.inject({ method: 'GET', url: '/v1/subscriptions' })).json();
    expect(v.total).toBe(4);
    expect(v.patterns.find((p: { pattern: string }) => p.pattern === 'orders.>')).toMatchObject({ count: 2, clients: 2, peers: 0, plain: 2, queues: [] });
    expect(v.patterns.find((p: { pattern: string }) => p.pattern === 'jobs.*')).toMatchObject({ count: 2, plain: 0, queues: [{ name: 'workers', members: 2 }] });
  });
});

describe('internal subscribers', () => {
  it('the HTTP inbox is the node\'s own subscription (kind internal): not counted as a client in views or metrics', async () => {
    const { node, http } = await setup();
    const none = await fetch(`${http.url}/v1/request/svc.none`, { method: 'POST', headers: BIN, body: 'x' });
    expect(none.status).toBe(503);
    const inbox = `_INBOX.${node.id}.http.*`;
    const owners: string[] = [];
    node.table.forEach((s) => s.pattern === inbox && owners.push(s.owner.kind));
    expect(owners).toEqual(['internal']);
    const v = (await http.app.inject({ method: 'GET', url: '/v1/subscriptions' })).json();
    expect(v.patterns.find((p: { pattern: string }) => p.pattern === inbox)).toMatchObject({ count: 1, clients: 0, peers: 0, internal: 1 });
    const m = parseProm(await (await fetch(`${http.url}/metrics`)).text());
    expect([m.get('meshbus_subscriptions', { owner: 'client' }), m.get('meshbus_subscriptions', { owner: 'internal' })]).toEqual([0, 1]);
    // Still local interest: what peers hear about, so replies from other nodes come back.
    expect(node.table.localInterest()).toContainEqual({ pattern: inbox, queue: undefined });
  });

  it('subscribeInternal delivers matching events until unsubscribed, and refuses a bad pattern', async () => {
    const { node } = await setup();
    const got: string[] = [];
    const sub = node.subscribeInternal('int.*', (f) => got.push(f.topic), { label: 'test' });
    const c = await client(node);
    c.pub('int.a', 'x');
    await c.flush();
    expect(node.publishLocal('int.b', new Uint8Array(1))).toBe(1);
    sub.unsubscribe();
    sub.unsubscribe();
    c.pub('int.c', 'x');
    await c.flush();
    expect(got).toEqual(['int.a', 'int.b']);
    expect(() => node.subscribeInternal('a..b', () => {}, { label: 'bad' })).toThrow(expect.objectContaining({ code: 'MB_ERR_BAD_TOPIC' }));
  });
});

describe('/metrics', () => {
  it('is valid Prometheus text and counts the traffic actually sent', async () => {
    const peers: PeerView[] = [{ id: 'aaaaaaaaaaaaaaaa', name: 'n"2', address: '127.0.0.1:7001', state: 'up', rttMs: 2, since: 0, msgsIn: 7, msgsOut: 9 }];
    // Every scrape rendered anew (the default renders at most once a second): the test reads deltas between scrapes.
    const { node, http } = await setup({}, { cluster: { ready: () => true, peers: () => peers }, metricsMinInterval: 0 });
    const scrape = async () => {
      const r = await fetch(`${http.url}/metrics`);
      expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parseProm(await r.text());
    };
    const before = await scrape();
    const pub = await client(node);
    const sub = await client(node);
    sub.sub('m.>', 1);
    await sub.flush();
    const frames = Array.from({ length: 10 }, (_, i) => encodeFrame({ type: FrameType.PUB, topic: `m.${i}`, payload: Buffer.alloc(100 + i) }));
    for (const f of frames) pub.socket.write(f);
    await pub.flush();
    await sub.waitFor(() => sub.events().length === 10);
    const after = await scrape();
    const d = (name: string, labels?: Record<string, string>) => after.get(name, labels)! - before.get(name, labels)!;
    const size = frames.reduce((n, f) => n + f.length, 0);
    expect(d('meshbus_messages_in_total')).toBe(10);
    expect(d('meshbus_messages_out_total')).toBe(10);
    expect(d('meshbus_bytes_in_total')).toBe(size);
    expect(d('meshbus_bytes_out_total')).toBe(size);
    expect(after.types.get('meshbus_messages_in_total')).toBe('counter');
    expect(after.get('meshbus_connections', { kind: 'tcp' })).toBe(2);
    expect(after.get('meshbus_connections', { kind: 'ws' })).toBe(0);
    expect(after.get('meshbus_connections', { kind: 'peer' })).toBe(1);
    expect(after.get('meshbus_subscriptions', { owner: 'client' })).toBeGreaterThanOrEqual(1);
    expect(after.get('meshbus_peer_up', { peer: 'aaaaaaaaaaaaaaaa', name: 'n"2' })).toBe(1);
    expect(after.get('meshbus_peer_rtt_seconds', { peer: 'aaaaaaaaaaaaaaaa' })).toBe(0.002);
    expect(after.get('meshbus_peer_messages_out_total', { peer: 'aaaaaaaaaaaaaaaa' })).toBe(9);
    expect(after.get('meshbus_peers', { state: 'up' })).toBe(1);
    expect(after.get('meshbus_memory_bytes', { kind: 'rss' })).toBeGreaterThan(0);
    expect(after.get('meshbus_event_loop_lag_seconds', { quantile: '0.99' })).toBeGreaterThanOrEqual(0);
    expect(after.types.get('meshbus_event_loop_lag_seconds')).toBe('summary');
    expect(after.get('meshbus_info', { id: node.id })).toBe(1);
    for (const name of ['meshbus_slow_consumers_total', 'meshbus_protocol_errors_total', 'meshbus_ready', 'meshbus_uptime_seconds']) {
      expect(after.types.has(name), name).toBe(true);
    }
    expect(after.get('meshbus_dropped_total', { reason: 'slow_consumer' })).toBe(0);

    // A malformed frame shows up as a protocol error; an event nobody wants as a no-interest drop.
    const bad = encodeFrame({ type: FrameType.PUB, topic: 'x.y', payload: Buffer.from('z') });
    bad[4] = 0; // break the magic: fatal protocol error
    const garbage = await client(node);
    garbage.socket.write(bad);
    await garbage.waitClosed();
    pub.pub('nobody.home', 'x');
    await pub.flush();
    const last = await scrape();
    expect(last.get('meshbus_protocol_errors_total')! - after.get('meshbus_protocol_errors_total')!).toBe(1);
    expect(last.get('meshbus_dropped_total', { reason: 'no_interest' })! - after.get('meshbus_dropped_total', { reason: 'no_interest' })!).toBe(1);
  });

  it('GET /v1/workers lists none on a node not run with --workers, and needs the token', async () => {
    const { http } = await setup({}, { adminToken: 'sekret' });
    expect((await fetch(`${http.url}/v1/workers`)).status).toBe(401);
    const r = await fetch(`${http.url}/v1/workers`, { headers: { authorization: 'Bearer sekret' } });
    expect(await json(r)).toEqual({ workers: [] });
  });

  it('needs no token, while /v1 does', async () => {
    const { http } = await setup({}, { adminToken: 'sekret' });
    expect((await fetch(`${http.url}/metrics`)).status).toBe(200);
    expect((await fetch(`${http.url}/v1/node`)).status).toBe(401);
  });
});

describe('publish and request over HTTP', () => {
  it('POST /v1/publish reaches a TCP subscriber with the payload bytes and x-meshbus-h-* headers', async () => {
    const { node, http } = await setup();
    const sub = await client(node);
    const tap = new EventTap(sub);
    sub.sub('orders.*', 1);
    await sub.flush();
    const body = Buffer.from([0, 1, 2, 255, 10, 13]);
    const r = await fetch(`${http.url}/v1/publish/orders.eu`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-custom', 'x-meshbus-h-trace-id': 'abc-123', 'X-Meshbus-H-Tenant': 'acme', 'x-other': 'dropped' },
      body,
    });
    expect(r.status).toBe(200);
    expect(await json(r)).toEqual({ topic: 'orders.eu', receivers: 1 });
    const e = await tap.waitFor((x) => x.topic === 'orders.eu');
    expect(e.type).toBe(FrameType.PUB);
    expect(e.payload.equals(body)).toBe(true);
    expect(e.ext?.headers).toEqual({ 'trace-id': 'abc-123', tenant: 'acme' });
    // JSON bodies are bytes too: not parsed, not re-serialised.
    await fetch(`${http.url}/v1/publish/orders.us`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{ "a" : 1 }' });
    expect((await tap.waitFor((x) => x.topic === 'orders.us')).payload.toString()).toBe('{ "a" : 1 }');
    // An empty body is an empty payload.
    const empty = await http.app.inject({ method: 'POST', url: '/v1/publish/orders.none', headers: BIN });
    expect(empty.statusCode).toBe(200);
    expect((await tap.waitFor((x) => x.topic === 'orders.none')).payload.length).toBe(0);
    expect(http.stats.published).toBe(3);
    // Counted in the node's top topics.
    const st = (await http.app.inject({ method: 'GET', url: '/v1/stats' })).json();
    expect(st.topTopics.map((t: { topic: string }) => t.topic)).toEqual(expect.arrayContaining(['orders.eu', 'orders.us', 'orders.none']));
  });

  it('POST /v1/request is answered by a TCP responder, reply headers included', async () => {
    const { node, http } = await setup();
    const svc = await client(node);
    const tap = new EventTap(svc);
    svc.sub('svc.echo', 1);
    await svc.flush();
    const pending = fetch(`${http.url}/v1/request/svc.echo?timeout=3000`, { method: 'POST', headers: { ...BIN, 'x-meshbus-h-who': 'http' }, body: 'ping' });
    const req = await tap.waitFor((e) => e.type === FrameType.REQ);
    expect(req.payload.toString()).toBe('ping');
    expect(req.ext?.headers).toEqual({ who: 'http' });
    expect(req.ext?.reply).toMatch(new RegExp(`^_INBOX\\.${node.id}\\.http\\.[0-9a-f]{32}$`));
    svc.send({ type: FrameType.PUB, topic: req.ext!.reply!, correlation: req.correlation, ext: { headers: { 'content-type': 'text/plain', answered: 'yes' } }, payload: Buffer.from('pong:ping') });
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/plain');
    expect(r.headers.get('x-meshbus-h-answered')).toBe('yes');
    expect(await r.text()).toBe('pong:ping');
    expect(http.stats.requests.ok).toBe(1);
  });

  it('POST /v1/request: reply headers are matched without regard to case, as HTTP does (a Content-Type reply went out as application/octet-stream; of X-Id and x-id one was dropped)', async () => {
    // Replayed from NATS header case handling (https://github.com/nats-io/nats.deno/issues/147): event
    // headers keep their case, HTTP's do not; a responder writing the canonical MIME form must still be heard.
    const { node, http } = await setup();
    const svc = await client(node);
    const tap = new EventTap(svc);
    svc.sub('svc.case', 1);
    await svc.flush();
    const pending = fetch(`${http.url}/v1/request/svc.case?timeout=3000`, { method: 'POST', headers: BIN, body: '{}' });
    const req = await tap.waitFor((e) => e.type === FrameType.REQ);
    const headers = { 'Content-Type': 'application/json', 'X-Id': '1', 'x-id': '2' };
    svc.send({ type: FrameType.PUB, topic: req.ext!.reply!, correlation: req.correlation, ext: { headers }, payload: Buffer.from('{"ok":true}') });
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    expect(r.headers.get('x-meshbus-h-content-type')).toBe('application/json');
    expect(r.headers.get('x-meshbus-h-x-id')).toBe('1, 2');
    expect(await r.json()).toEqual({ ok: true });
  });

  it('header values are UTF-8 both ways, as curl sends them (Node reads header bytes as Latin-1: "José" became "JosÃ©")', async () => {
    const { node, http } = await setup();
    const svc = await client(node);
    const tap = new EventTap(svc);
    svc.sub('svc.utf8', 1);
    await svc.flush();
    const raw = (value: Buffer): Promise<string> =>
      new Promise((resolve) => {
        const s = connect(Number(new URL(http.url).port), '127.0.0.1', () =>
          s.write(Buffer.concat([Buffer.from('POST /v1/request/svc.utf8 HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\ncontent-type: application/octet-stream\r\ncontent-length: 0\r\nx-meshbus-h-user: '), value, Buffer.from('\r\n\r\n')])),
        );
        const got: Buffer[] = [];
        s.on('data', (d: Buffer) => got.push(d)).on('close', () => resolve(Buffer.concat(got).toString('utf8')));
      });
    const pending = raw(Buffer.from('José 日本', 'utf8'));
    const req = await tap.waitFor((e) => e.type === FrameType.REQ);
    expect(req.ext?.headers).toEqual({ user: 'José 日本' });
    svc.send({ type: FrameType.PUB, topic: req.ext!.reply!, correlation: req.correlation, ext: { headers: { answer: 'ünïcode ✓' } }, payload: Buffer.from('ok') });
    expect(await pending).toContain('x-meshbus-h-answer: ünïcode ✓\r\n');
    // Bytes that are not UTF-8 stay Latin-1 (0xE9 alone is é there).
    void raw(Buffer.from([0x4a, 0x6f, 0x73, 0xe9]));
    const req2 = await tap.waitFor((e) => e.type === FrameType.REQ && e.correlation !== req.correlation);
    expect(req2.ext?.headers).toEqual({ user: 'José' });
  });

  it('answers 503 MB_ERR_NO_RESPONDERS at once and 504 MB_ERR_TIMEOUT when nobody replies', async () => {
    const { node, http } = await setup();
    const t0 = Date.now();
    const none = await fetch(`${http.url}/v1/request/svc.missing`, { method: 'POST', headers: BIN, body: 'x' });
    expect(none.status).toBe(503);
    expect((await json(none)).error).toMatchObject({ code: 'MB_ERR_NO_RESPONDERS', num: 2007 });
    expect(Date.now() - t0).toBeLessThan(1000);
    const mute = await client(node);
    mute.sub('svc.mute', 1);
    await mute.flush();
    const t1 = Date.now();
    const slow = await fetch(`${http.url}/v1/request/svc.mute?timeout=150`, { method: 'POST', headers: BIN, body: 'x' });
    expect(slow.status).toBe(504);
    expect((await json(slow)).error.code).toBe('MB_ERR_TIMEOUT');
    expect(Date.now() - t1).toBeGreaterThanOrEqual(140);
    const bad = await http.app.inject({ method: 'POST', url: '/v1/request/svc.mute?timeout=abc', payload: 'x', headers: BIN });
    expect([bad.statusCode, bad.json().error.code]).toEqual([400, 'MB_ERR_INVALID_ARGUMENT']);
    const tooLong = await http.app.inject({ method: 'POST', url: '/v1/request/svc.mute?timeout=999999', payload: 'x', headers: BIN });
    expect(tooLong.statusCode).toBe(400);
    expect(http.stats.requests).toMatchObject({ noResponders: 1, timeout: 1 });
  });

  it('closing the API answers calls still waiting with 503 MB_ERR_DRAINING: a request for its reply, a trace for its wait (was: both connections cut, an untyped socket error)', async () => {
    const { node, http } = await setup();
    const mute = await client(node);
    mute.sub('svc.mute', 1);
    await mute.flush();
    const call = (url: string): Promise<{ status: number; code: string } | string> =>
      fetch(`${http.url}${url}`, { method: 'POST', headers: BIN, body: 'x' }).then(
        async (r) => ({ status: r.status, code: (await json(r)).error?.code }),
        (e: Error & { cause?: { code?: string } }) => `fetch failed: ${e.cause?.code ?? e.message}`,
      );
    const request = call('/v1/request/svc.mute?timeout=30000');
    const trace = call('/v1/trace/svc.mute?wait=30000');
    await mute.waitFor((g) => g.topic === 'svc.mute' && g.type === FrameType.PUB);
    await http.close();
    expect(await request).toEqual({ status: 503, code: 'MB_ERR_DRAINING' });
    expect(await trace).toEqual({ status: 503, code: 'MB_ERR_DRAINING' });
  });

  it('refuses a bad topic with 400 and a payload over the limit with 413', async () => {
    const { http } = await setup({ maxPayload: 1024 });
    for (const t of ['a.*', 'a..b', 'a.>', encodeURIComponent('a b'), 'x'.repeat(300)]) {
      const r = await http.app.inject({ method: 'POST', url: `/v1/publish/${t}`, payload: 'x', headers: BIN });
      expect(r.statusCode, t).toBe(400);
      expect(r.json().error).toMatchObject({ code: 'MB_ERR_BAD_TOPIC', num: 1009 });
    }
    const big = await fetch(`${http.url}/v1/publish/a.b`, { method: 'POST', headers: BIN, body: Buffer.alloc(1025) });
    expect(big.status).toBe(413);
    expect((await json(big)).error.code).toBe('MB_ERR_PAYLOAD_TOO_LARGE');
    const ok = await fetch(`${http.url}/v1/publish/a.b`, { method: 'POST', headers: BIN, body: Buffer.alloc(1024) });
    expect(ok.status).toBe(200);
    const bigReq = await http.app.inject({ method: 'POST', url: '/v1/request/a.b', payload: Buffer.alloc(5000), headers: BIN });
    expect(bigReq.statusCode).toBe(413);
  });
});

describe('admin token and errors', () => {
  it('guards /v1/* with 401 without a token and 403 with a wrong one; health, metrics and the page stay open', async () => {
    const { http } = await setup({}, { adminToken: 's3cret' });
    for (const url of ['/v1/node', '/v1/cluster', '/v1/connections', '/v1/subscriptions', '/v1/stats', '/v1/stats/history']) {
      const no = await http.app.inject({ method: 'GET', url });
      expect([no.statusCode, no.json().error.code], url).toEqual([401, 'MB_ERR_AUTH_FAILED']);
      const wrong = await http.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer nope' } });
      expect([wrong.statusCode, wrong.json().error.code], url).toEqual([403, 'MB_ERR_PERMISSION_DENIED']);
      const ok = await http.app.inject({ method: 'GET', url, headers: { authorization: 'Bearer s3cret' } });
      expect(ok.statusCode, url).toBe(200);
    }
    const basic = await http.app.inject({ method: 'GET', url: '/v1/node', headers: { authorization: 'Basic czNjcmV0' } });
    expect(basic.statusCode).toBe(401);
    const pub = await fetch(`${http.url}/v1/publish/a.b`, { method: 'POST', headers: BIN, body: 'x' });
    expect(pub.status).toBe(401);
    const pubOk = await fetch(`${http.url}/v1/publish/a.b`, { method: 'POST', body: 'x', headers: { ...BIN, authorization: 'Bearer s3cret' } });
    expect(pubOk.status).toBe(200);
    for (const url of ['/healthz', '/readyz', '/metrics', '/', '/dashboard']) {
      expect((await http.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
  });

  it('answers unknown routes with a JSON 404 and never shows a stack', async () => {
    const { http } = await setup();
    const r = await fetch(`${http.url}/v2/nothing?x=1`);
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/application\/json/);
    expect(await json(r)).toEqual({ error: { code: 'MB_ERR_NOT_FOUND', num: 9003, message: 'no route GET /v2/nothing' } });
    const wrongMethod = await http.app.inject({ method: 'DELETE', url: '/v1/node' });
    expect(wrongMethod.statusCode).toBe(404);
    const badUrl = await http.app.inject({ method: 'POST', url: '/v1/publish/%E0%A4%A', payload: 'x' });
    expect(badUrl.statusCode).toBe(400);
    expect(badUrl.body).not.toMatch(/\bat \S+:\d+/);
    // Anything unexpected is a generic 500: the detail is logged, not sent.
    const c = classify(new Error('secret detail /home/x/file.ts:12'));
    expect(c).toEqual({ status: 500, body: { error: { code: 'MB_ERR_INTERNAL', num: 9001, message: 'internal error' } }, internal: true });
    expect(httpStatus('MB_ERR_TIMEOUT')).toBe(504);
    expect(httpStatus('MB_ERR_BAD_CRC')).toBe(400);
  });

  it('refuses bad options and a port in use at start-up', async () => {
    const { node, http } = await setup();
    await expect(startHttp(node, { port: 70000 })).rejects.toMatchObject({ code: 'MB_ERR_CONFIG' });
    await expect(startHttp(node, { port: 0, adminToken: '' })).rejects.toMatchObject({ code: 'MB_ERR_CONFIG' });
    await expect(startHttp(node, { port: http.port, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'MB_ERR_CONFIG' });
  });
});

describe('dashboard data', () => {
  it('keeps 1-second rate samples and the top topics', async () => {
    const { node, http } = await setup({}, { historySeconds: 3 });
    const sub = await client(node);
    sub.sub('>', 1);
    await sub.flush();
    http.history.sample();
    for (let i = 0; i < 5; i++) node.publishLocal('hot.topic', Buffer.from('x'));
    node.publishLocal('cold.topic', Buffer.from('x'));
    const s = http.history.sample();
    expect(s.msgsIn).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) http.history.sample();
    const h = (await http.app.inject({ method: 'GET', url: '/v1/stats/history' })).json();
    expect(h.intervalMs).toBe(1000);
    expect(h.samples.length).toBe(3);
    const st = (await http.app.inject({ method: 'GET', url: '/v1/stats' })).json();
    expect(st.topTopics.slice(0, 2)).toEqual([{ topic: 'hot.topic', count: 5 }, { topic: 'cold.topic', count: 1 }]);
    expect(st.slowConsumers).toEqual([]);
    const page = await fetch(`${http.url}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('<svg id="topology"');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
  });

  it('TopicCounter stays bounded and keeps hot topics through evictions', () => {
    const tc = new TopicCounter(8);
    for (let i = 0; i < 100; i++) tc.count(1, { topic: 'hot' });
    // Evictions at most once per second: the clock is passed in.
    for (let i = 0; i < 1000; i++) tc.count(1000 + i, { topic: `t${i}` }, 1000 * (i + 1));
    const top = tc.top(20);
    expect(top.length).toBeLessThanOrEqual(8);
    expect(top[0]).toEqual({ topic: 'hot', count: 100 });
  });

  it('TopicCounter does not sort itself per event when more topics than its capacity are in flight', () => {
    const tc = new TopicCounter(8, 1000);
    let reads = 0;
    const src = (t: string): { readonly topic: string } => ({
      get topic() {
        reads++;
        return t;
      },
    });
    for (let i = 0; i < 8; i++) tc.count(i, src(`t${i}`), 5000);
    // Full: the first new topic makes room (one eviction: 4 kept, 4 free); once
    // full again, for the rest of that second new topics are neither decoded nor stored.
    for (let i = 0; i < 10_000; i++) tc.count(100 + i, src(`n${i}`), 5000);
    expect(reads).toBe(8 + 4);
    expect(tc.uncounted).toBe(10_000 - 4);
    // A second later there is room again (the less published half dropped).
    tc.count(99_999, src('later'), 6001);
    expect(tc.top(8).map((x) => x.topic)).toContain('later');
  });

  it('TopicCounter reads the clock its owner ticks, not Date.now() per event it cannot count', () => {
    const tc = new TopicCounter(8, 1000);
    tc.tick(5000);
    for (let i = 0; i < 8; i++) tc.count(i, { topic: `t${i}` });
    let reads = 0;
    const real = Date.now.bind(Date);
    const spy = vi.spyOn(Date, 'now').mockImplementation(() => {
      reads++;
      return real();
    });
    try {
      for (let i = 0; i < 10_000; i++) tc.count(100 + i, { topic: `n${i}` });
    } finally {
      spy.mockRestore();
    }
    expect(reads).toBe(0);
    expect(tc.uncounted).toBe(10_000 - 4);
    // Evictions follow the ticked clock: a second later there is room again.
    tc.tick(6001);
    tc.count(99_999, { topic: 'later' });
    expect(tc.top(8).map((x) => x.topic)).toContain('later');
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { Fixture, sleep, until, url } from '@meshbus/testkit';
import { ClientError, MsgpackCodec, ProtocolError, SessionError, connect, type Msg, type Status } from '../src/index.js';
import { nextStatus, recordStatus, tcpProxy, wsBridge } from './helpers.js';

const fx = new Fixture();
afterEach(() => fx.teardown());

async function client(servers: string | string[], opts: Parameters<typeof connect>[1] = {}) {
  return fx.track(await connect(servers, opts));
}

function collect(msgs: Msg[]) {
  return (m: Msg) => msgs.push(m);
}

describe('connect and handshake', () => {
  it('surfaces the WELCOME: node id, client id, limits, peers', async () => {
    const n = await fx.node({ maxPayload: 4096 });
    const c = await client(`meshbus://127.0.0.1:${n.port}`);
    expect(c.info).toMatchObject({ node: n.id, maxPayload: 4096, version: 1, server: `tcp://127.0.0.1:${n.port}` });
    expect(c.info!.client).toMatch(/^[0-9a-f]{16}$/);
    expect(Array.isArray(c.info!.peers)).toBe(true);
    expect(c.isConnected).toBe(true);
  });

  it('rejects with ClientError MB_ERR_CONNECT_FAILED when no server answers', async () => {
    const n = await fx.node();
    const port = n.port;
    await n.close();
    const err = await connect(url(port), { connectTimeout: 1000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toBe('MB_ERR_CONNECT_FAILED');
    // The last attempt's reason once, not "could not connect to any server: could not connect to any server: ...".
    expect((err as ClientError).message).toMatch(/^could not connect to any server: tcp:\/\/127\.0\.0\.1:\d+: /);
    expect((err as ClientError).message.match(/could not connect/g)).toHaveLength(1);
  });

  it('auth failure is a terminal SessionError, without retries', async () => {
    const n = await fx.node({ token: 's3cret' });
    let calls = 0;
    const t0 = Date.now();
    const err = await connect([url(n), url(n)], {
      waitOnFirstConnect: true,
      getToken: () => {
        calls++;
        return 'wrong';
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionError);
    expect((err as SessionError).code).toBe('MB_ERR_AUTH_FAILED');
    expect(calls).toBe(1);
    expect(Date.now() - t0).toBeLessThan(1000);
    const ok = await client(url(n), { getToken: async () => 's3cret' });
    expect(ok.isConnected).toBe(true);
  });
});

describe('connect aborted', () => {
  /** A TCP server that accepts and never answers (no WELCOME): counts the attempts. */
  async function silentServer(): Promise<{ port: number; accepted: () => number; open: () => number; close: () => Promise<void> }> {
    const net = await import('node:net');
    const socks = new Set<import('node:net').Socket>();
    let n = 0;
    const srv = net.createServer((s) => {
      n++;
      socks.add(s);
      s.resume(); // reads (and drops) the HELLO, so the client's FIN is seen
      s.on('close', () => socks.delete(s));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return {
      port: (srv.address() as import('node:net').AddressInfo).port,
      accepted: () => n,
      open: () => socks.size,
      close: () => new Promise<void>((r) => (socks.forEach((s) => s.destroy()), srv.close(() => r()))),
    };
  }

  it('a waitOnFirstConnect connect() to a node that never answers stops when its signal aborts: rejected, no more attempts, nothing open', async () => {
    // Before: the caller had no client to close until connect() resolved, so it retried for ever.
    const srv = await silentServer();
    const ac = new AbortController();
    const p = connect(url(srv.port), { waitOnFirstConnect: true, connectTimeout: 200, reconnectBackoff: { base: 20, max: 50 }, signal: ac.signal });
    await until(() => srv.accepted() >= 2, 'two attempts', 5000);
    const t0 = Date.now();
    ac.abort();
    const err = await p.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED', message: expect.stringMatching(/aborted/) });
    expect(Date.now() - t0).toBeLessThan(500);
    const after = srv.accepted();
    await until(() => srv.open() === 0, 'the attempt closed', 2000);
    await sleep(600);
    expect(srv.accepted()).toBe(after);
    expect(srv.open()).toBe(0);
    await srv.close();
  });

  it('an already aborted signal rejects at once without a connection; aborting after connect() resolved changes nothing', async () => {
    const n = await fx.node();
    const ac = new AbortController();
    ac.abort();
    await expect(connect(url(n), { signal: ac.signal })).rejects.toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED' });
    const later = new AbortController();
    const c = await client(url(n), { signal: later.signal });
    later.abort();
    await c.flush();
    expect(c.isConnected).toBe(true);
  });
});

describe('publish and subscribe', () => {
  it('routes by exact topic and wildcards, each subscription once', async () => {
    const n = await fx.node();
    const pub = await client(url(n));
    const sub = await client(url(n));
    const a: Msg[] = [];
    const b: Msg[] = [];
    const c: Msg[] = [];
    const d: Msg[] = [];
    sub.subscribe('orders.*.created', { callback: collect(a) });
    sub.subscribe('orders.>', { callback: collect(b) });
    sub.subscribe('orders.eu.created', { callback: collect(c) });
    sub.subscribe('payments.>', { callback: collect(d) });
    await sub.flush();
    pub.publish('orders.eu.created', 'o1', { headers: { k: 'v' } });
    pub.publish('orders.eu.shipped', 'o2');
    pub.publish('orders', 'o3');
    await pub.flush();
    await until(() => b.length === 2);
    await sleep(50);
    expect(a.map((m) => m.string())).toEqual(['o1']);
    expect(b.map((m) => m.string())).toEqual(['o1', 'o2']);
    expect(c.map((m) => m.string())).toEqual(['o1']);
    expect(d).toEqual([]);
    expect(a[0]!.headers).toEqual({ k: 'v' });
    expect(a[0]!.topic).toBe('orders.eu.created');
    expect(a[0]!.origin).toMatch(/^[0-9a-f]{16}$/);
    expect(a[0]!.timestamp).toBeGreaterThan(0);
  });

  it('async iterator, codecs, max and unsubscribe', async () => {
    const n = await fx.node();
    const c = await client(url(n));
    const sub = c.subscribe('t.>', { max: 3, codec: MsgpackCodec });
    await c.flush();
    c.publish('t.1', { n: 1 }, { codec: MsgpackCodec as never });
    c.publish('t.2', { n: 2 }, { codec: MsgpackCodec as never });
    c.publish('t.3', { n: 3 }, { codec: MsgpackCodec as never });
    c.publish('t.4', { n: 4 }, { codec: MsgpackCodec as never });
    const got: unknown[] = [];
    for await (const m of sub) got.push(m.decoded());
    expect(got).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(sub.isClosed).toBe(true);

    const s2 = c.subscribe('j');
    await c.flush();
    c.publish('j', JSON.stringify({ ok: true }));
    const it = s2[Symbol.asyncIterator]();
    expect((await it.next()).value!.json()).toEqual({ ok: true });
    s2.unsubscribe();
    c.publish('j', 'after');
    await c.flush();
    expect((await it.next()).done).toBe(true);
    expect(await s2.closed).toBeUndefined();
  });

  async function roundTrip(max: number): Promise<void> {
    const n = await fx.node({ maxPayload: max });
    const c = await client(url(n));
    const got: Msg[] = [];
    c.subscribe('p', { callback: collect(got) });
    await c.flush();
    const big = new Uint8Array(max);
    for (let i = 0; i < max; i++) big[i] = (i * 31) & 0xff;
    c.publish('p', new Uint8Array(0));
    c.publish('p', new Uint8Array([7]));
    c.publish('p', big);
    await until(() => got.length === 3, 'three payloads', 3000);
    expect(got[0]!.data.length).toBe(0);
    expect([...got[1]!.data]).toEqual([7]);
    expect(got[2]!.data.length).toBe(max);
    expect(Buffer.compare(Buffer.from(got[2]!.data), Buffer.from(big))).toBe(0);
  }

  it('payloads of 0 B, 1 B and exactly maxPayload (512 KiB) arrive intact', () => roundTrip(512 * 1024));

  // A frame larger than the node's queue high-water mark must still go out when the wire is empty.
  it('payload of exactly the default maxPayload (1 MiB) arrives intact', () => roundTrip(1024 * 1024));

  it('rejects an over-limit payload and a bad topic locally with typed errors; the connection stays', async () => {
    const n = await fx.node({ maxPayload: 1000 });
    const c = await client(url(n));
    expect(() => c.publish('p', new Uint8Array(1001))).toThrow(SessionError);
    try {
      c.publish('p', new Uint8Array(1001));
    } catch (e) {
      expect((e as SessionError).code).toBe('MB_ERR_PAYLOAD_TOO_LARGE');
    }
    expect(() => c.publish('a.*', 'x')).toThrow(ProtocolError);
    expect(() => c.publish('', 'x')).toThrow(expect.objectContaining({ code: 'MB_ERR_BAD_TOPIC' }));
    expect(() => c.subscribe('a.>.b')).toThrow(expect.objectContaining({ code: 'MB_ERR_BAD_TOPIC' }));
    expect(() => c.publish('p', { not: 'bytes' })).toThrow(expect.objectContaining({ code: 'MB_ERR_INVALID_ARGUMENT' }));
    await expect(c.request('p', new Uint8Array(1001))).rejects.toMatchObject({ code: 'MB_ERR_PAYLOAD_TOO_LARGE' });
    const got: Msg[] = [];
    c.subscribe('p', { callback: collect(got) });
    c.publish('p', new Uint8Array(1000));
    await until(() => got.length === 1);
    expect(c.isConnected).toBe(true);
  });

  it('a subscription the node refuses ends with its typed error (ERROR correlation = sid)', async () => {
    const n = await fx.node({ maxSubscriptions: 1 });
    const c = await client(url(n));
    const errors: Status[] = [];
    c.on('status', (s) => s.type === 'error' && errors.push(s));
    const ok = c.subscribe('a');
    const refused = c.subscribe('b');
    const err = await refused.closed;
    expect(err).toBeInstanceOf(SessionError);
    expect(err!.code).toBe('MB_ERR_TOO_MANY_SUBSCRIPTIONS');
    expect(ok.isClosed).toBe(false);
    expect(errors).toMatchObject([{ type: 'error', sid: refused.sid }]);
  });

  it('echo=false does not deliver your own publishes', async () => {
    const n = await fx.node();
    const c = await client(url(n), { echo: false });
    const other = await client(url(n));
    const got: Msg[] = [];
    c.subscribe('e', { callback: collect(got) });
    await c.flush();
    c.publish('e', 'mine');
    other.publish('e', 'theirs');
    await other.flush();
    await c.flush();
    await until(() => got.length >= 1);
    await sleep(30);
    expect(got.map((m) => m.string())).toEqual(['theirs']);
  });
});

describe('queue groups', () => {
  it('a group across two clients gets each event once; plain subscriptions still get all', async () => {
    const n = await fx.node();
    const w1 = await client(url(n));
    const w2 = await client(url(n));
    const pub = await client(url(n));
    const g1: Msg[] = [];
    const g2: Msg[] = [];
    const plain: Msg[] = [];
    w1.subscribe('jobs.>', { queue: 'workers', callback: collect(g1) });
    w2.subscribe('jobs.>', { queue: 'workers', callback: collect(g2) });
    w1.subscribe('jobs.*', { callback: collect(plain) });
    await w1.flush();
    await w2.flush();
    const N = 200;
    for (let i = 0; i < N; i++) pub.publish(`jobs.${i % 5}`, String(i));
    await pub.flush();
    await until(() => g1.length + g2.length === N && plain.length === N);
    await sleep(50);
    const seen = [...g1, ...g2].map((m) => Number(m.string())).sort((x, y) => x - y);
    expect(seen).toEqual([...Array(N).keys()]);
    expect(g1.length).toBeGreaterThan(0);
    expect(g2.length).toBeGreaterThan(0);
    expect(g1.every((m) => m.sid !== 0)).toBe(true);
    expect(plain.map((m) => Number(m.string()))).toEqual([...Array(N).keys()]);
    expect(plain.every((m) => m.sid === 0)).toBe(true);
  });
});

describe('request/reply', () => {
  it('gets the reply, with headers, via the inbox', async () => {
    const n = await fx.node();
    const svc = await client(url(n));
    const c = await client(url(n));
    svc.subscribe('svc.upper', {
      callback: (m) => {
        m.respond(m.string().toUpperCase(), { headers: { from: 'svc' } });
      },
    });
    await svc.flush();
    const replies = await Promise.all([c.request('svc.upper', 'a'), c.request('svc.upper', 'b', { headers: { x: '1' } }), c.request('svc.upper', 'c')]);
    expect(replies.map((r) => r.string())).toEqual(['A', 'B', 'C']);
    expect(replies[0]!.headers).toEqual({ from: 'svc' });
    expect(replies[0]!.topic.startsWith(`_INBOX.${c.info!.client}.`)).toBe(true);
  });

  it('no responders rejects at once; a silent responder times out', async () => {
    const n = await fx.node();
    const c = await client(url(n));
    const t0 = Date.now();
    const err = await c.request('nobody.home', 'x', { timeout: 5000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionError);
    expect((err as SessionError).code).toBe('MB_ERR_NO_RESPONDERS');
    expect(Date.now() - t0).toBeLessThan(1000);
    c.subscribe('silent');
    await c.flush();
    const t1 = Date.now();
    const err2 = await c.request('silent', 'x', { timeout: 200 }).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(ClientError);
    expect((err2 as ClientError).code).toBe('MB_ERR_TIMEOUT');
    expect(Date.now() - t1).toBeGreaterThanOrEqual(190);
  });
});

describe('flush, drain, close', () => {
  it('flush resolves after a round trip; rejects once closed', async () => {
    const n = await fx.node();
    const c = await client(url(n));
    await c.flush();
    await c.close();
    await expect(c.flush()).rejects.toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED' });
    expect(() => c.publish('a', 'x')).toThrow(expect.objectContaining({ code: 'MB_ERR_CONNECTION_CLOSED' }));
  });

  it('drain delivers what was in flight, ends subscriptions and closes cleanly', async () => {
    const n = await fx.node();
    const sub = await client(url(n));
    const pub = await client(url(n));
    const s = sub.subscribe('d.>');
    await sub.flush();
    for (let i = 0; i < 100; i++) pub.publish('d.x', String(i));
    await pub.flush();
    const done = sub.drain();
    const got: string[] = [];
    for await (const m of s) got.push(m.string());
    await done;
    expect(got.length).toBe(100);
    expect(await sub.closed()).toBeUndefined();
    expect(sub.isClosed).toBe(true);
  });

  it('a request made during drain() is refused at once (its reply could not arrive), not sent and left to the close', async () => {
    const n = await fx.node();
    const responder = await client(url(n));
    let served = 0;
    responder.subscribe('svc', { callback: (m) => (served++, m.respond('ok')) });
    await responder.flush();
    const c = await client(url(n));
    expect((await c.request('svc', 'before')).string()).toBe('ok');
    const draining = c.drain();
    const t0 = Date.now();
    // Before: sent (the responder did the work), then rejected when drain closed the connection.
    await expect(c.request('svc', 'during', { timeout: 5000 })).rejects.toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED', message: expect.stringMatching(/draining/) });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(() => c.subscribe('x')).toThrow(expect.objectContaining({ code: 'MB_ERR_CONNECTION_CLOSED' }));
    c.publish('still.allowed', 'x'); // publishes remain allowed until the close
    await draining;
    await responder.flush();
    expect(served).toBe(1);
  });
});

describe('reconnect', () => {
  it('reconnects after the node restarts on the same port, resubscribes, and reports the status sequence', async () => {
    const n = await fx.node();
    const port = n.port;
    const c = await client(url(n), { reconnectBackoff: { base: 50, max: 200 } });
    const statuses = recordStatus(c);
    const got: Msg[] = [];
    c.subscribe('r.>', { callback: collect(got) });
    await c.flush();
    await n.close();
    await nextStatus(c, (s) => s.type === 'reconnecting');
    const n2 = await fx.node({ port });
    await nextStatus(c, (s) => s.type === 'connected');
    const pub = await client(url(n2));
    pub.publish('r.1', 'after restart');
    await until(() => got.length === 1);
    expect(c.info!.node).toBe(n2.id);
    await c.close();
    const types = statuses.map((s) => s.type);
    expect(types[0]).toBe('disconnected');
    expect(types[1]).toBe('reconnecting');
    expect(types.slice(-2)).toEqual(['connected', 'closed']);
    const connected = statuses.find((s) => s.type === 'connected') as Extract<Status, { type: 'connected' }>;
    expect(connected.reconnected).toBe(true);
    expect(c.stats().reconnects).toBe(1);
  });

  it('GOODBYE MB_ERR_DRAINING sends the client to another server at once', async () => {
    const a = await fx.node();
    const b = await fx.node();
    const c = await client([url(a), url(b)], { reconnectBackoff: { base: 5000, max: 5000 } });
    expect(c.info!.node).toBe(a.id);
    const disc = nextStatus(c, (s) => s.type === 'disconnected');
    const conn = nextStatus(c, (s) => s.type === 'connected');
    const t0 = Date.now();
    await a.shutdown();
    const d = (await disc) as Extract<Status, { type: 'disconnected' }>;
    expect(d.error?.code).toBe('MB_ERR_DRAINING');
    await conn;
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(c.info!.node).toBe(b.id);
  });

  it('publishes made while disconnected are sent in order after reconnect; overflow is reported, never silent', async () => {
    const n = await fx.node();
    const port = n.port;
    const c = await client(url(n), { reconnectBackoff: { base: 50, max: 100 }, outbox: { maxMessages: 5 } });
    const got: string[] = [];
    c.subscribe('o.>', { callback: (m) => got.push(m.string()) });
    await c.flush();
    await n.close();
    await nextStatus(c, (s) => s.type === 'disconnected');
    const overflow = nextStatus(c, (s) => s.type === 'outbox-overflow');
    for (let i = 0; i < 5; i++) c.publish('o.x', String(i));
    expect(c.outboxCount).toBe(5);
    expect(() => c.publish('o.x', 'too many')).toThrow(expect.objectContaining({ code: 'MB_ERR_OUTBOX_FULL' }));
    expect((await overflow) as unknown).toMatchObject({ type: 'outbox-overflow', topic: 'o.x', count: 5 });
    const flushed = nextStatus(c, (s) => s.type === 'outbox-flushed');
    await fx.node({ port });
    expect(await flushed).toMatchObject({ count: 5 });
    c.publish('o.x', 'live');
    await until(() => got.length === 6);
    expect(got).toEqual(['0', '1', '2', '3', '4', 'live']);
  });

  it('a request made while disconnected is sent on reconnect', async () => {
    const n = await fx.node();
    const port = n.port;
    const c = await client(url(n), { reconnectBackoff: { base: 50, max: 100 } });
    c.subscribe('q', { callback: (m) => m.respond('pong') });
    await c.flush();
    await n.close();
    await nextStatus(c, (s) => s.type === 'disconnected');
    const reply = c.request('q', 'ping', { timeout: 5000 });
    await fx.node({ port });
    expect((await reply).string()).toBe('pong');
  });

  it('gives up after maxReconnectAttempts and closes with MB_ERR_CONNECT_FAILED', async () => {
    const n = await fx.node();
    const c = await client(url(n), { maxReconnectAttempts: 2, reconnectBackoff: { base: 10, max: 20 } });
    const statuses = recordStatus(c);
    await n.close();
    const err = await c.closed();
    expect(err?.code).toBe('MB_ERR_CONNECT_FAILED');
    expect(statuses.filter((s) => s.type === 'reconnecting').length).toBe(2);
    expect(statuses.at(-1)).toMatchObject({ type: 'closed' });
  });
});

describe('liveness', () => {
  it('detects a half-open connection (no pongs) and reconnects', async () => {
    const n = await fx.node();
    const proxy = await tcpProxy(n.port);
    fx.closers.push(() => proxy.close());
    const c = await client([url(proxy.port), url(n)], { pingInterval: 100, reconnectBackoff: { base: 10, max: 20 }, ignoreClusterPeers: true });
    expect(c.server).toBe(`tcp://127.0.0.1:${proxy.port}`);
    const disc = nextStatus(c, (s) => s.type === 'disconnected');
    const t0 = Date.now();
    proxy.freeze();
    const d = (await disc) as Extract<Status, { type: 'disconnected' }>;
    expect(d.error?.code).toBe('MB_ERR_STALE_CONNECTION');
    // 2 unanswered pings at 100 ms intervals, then the third tick gives up.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(200);
    expect(Date.now() - t0).toBeLessThan(2000);
    await nextStatus(c, (s) => s.type === 'connected');
    expect(c.server).toBe(`tcp://127.0.0.1:${n.port}`);
  });

  it('checkLiveness() fails fast on a dead socket', async () => {
    const n = await fx.node();
    const proxy = await tcpProxy(n.port);
    fx.closers.push(() => proxy.close());
    const c = await client(url(proxy.port), { reconnect: false });
    proxy.freeze();
    const t0 = Date.now();
    c.checkLiveness(150);
    const err = await c.closed();
    expect(err?.code).toBe('MB_ERR_STALE_CONNECTION');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('answers the node\'s pings, so an idle connection stays up', async () => {
    const n = await fx.node({ pingInterval: 50 });
    const c = await client(url(n), { pingInterval: 10_000 });
    const statuses = recordStatus(c);
    await sleep(400);
    expect(statuses).toEqual([]);
    await c.flush();
  });
});

describe('tokens', () => {
  it('calls getToken on every connection attempt', async () => {
    const n = await fx.node({ token: 't' });
    const port = n.port;
    let calls = 0;
    const c = await client(url(n), {
      getToken: () => {
        calls++;
        return 't';
      },
      reconnectBackoff: { base: 20, max: 40 },
    });
    expect(calls).toBe(1);
    await n.close();
    await nextStatus(c, (s) => s.type === 'reconnecting');
    await fx.node({ port, token: 't' });
    await nextStatus(c, (s) => s.type === 'connected');
    expect(calls).toBeGreaterThanOrEqual(2);
  });

  it('an auth failure on reconnect is terminal: closed with the SessionError, no storm', async () => {
    const n = await fx.node({ token: 'old' });
    const port = n.port;
    const c = await client(url(n), { token: 'old', reconnectBackoff: { base: 10, max: 20 } });
    const statuses = recordStatus(c);
    await n.close();
    await fx.node({ port, token: 'rotated' });
    const err = await c.closed();
    expect(err).toBeInstanceOf(SessionError);
    expect(err?.code).toBe('MB_ERR_AUTH_FAILED');
    await sleep(100);
    expect(statuses.at(-1)).toMatchObject({ type: 'closed', error: { code: 'MB_ERR_AUTH_FAILED' } });
    expect(statuses.filter((s) => s.type === 'reconnecting').length).toBeLessThan(20);
  });
});

describe('WebSocket transport', () => {
  it('a ws:// client and a TCP client exchange events and requests through one node', async () => {
    const n = await fx.node();
    const bridge = await wsBridge(n.port);
    fx.closers.push(() => bridge.close());
    const ws = await client(`ws://127.0.0.1:${bridge.port}/`);
    const tcp = await client(url(n));
    expect(ws.info!.node).toBe(n.id);
    const atWs: string[] = [];
    const atTcp: string[] = [];
    ws.subscribe('x.>', { callback: (m) => atWs.push(m.string()) });
    tcp.subscribe('x.>', { callback: (m) => atTcp.push(m.string()) });
    tcp.subscribe('svc', { callback: (m) => m.respond(`re:${m.string()}`) });
    await ws.flush();
    await tcp.flush();
    for (let i = 0; i < 50; i++) ws.publish('x.ws', `w${i}`);
    tcp.publish('x.tcp', 't0');
    await until(() => atWs.length === 51 && atTcp.length === 51);
    expect(atTcp.filter((s) => s.startsWith('w'))).toEqual([...Array(50).keys()].map((i) => `w${i}`));
    expect((await ws.request('svc', 'hi')).string()).toBe('re:hi');
    const big = new Uint8Array(200_000).fill(3);
    const got = new Promise<Msg>((r) => tcp.subscribe('big', { callback: r, max: 1 }));
    await tcp.flush();
    ws.publish('big', big);
    expect((await got).data.length).toBe(200_000);
  });
});

describe('status stream, custom outbox, local slow consumer', () => {
  it('client.status() yields the typed events and ends on close', async () => {
    const n = await fx.node();
    const port = n.port;
    const c = await client(url(n), { reconnectBackoff: { base: 20, max: 40 } });
    const it = c.status();
    const types: string[] = [];
    const reading = (async () => {
      for await (const s of it) types.push(s.type);
    })();
    await n.close();
    await nextStatus(c, (s) => s.type === 'reconnecting');
    await fx.node({ port });
    await nextStatus(c, (s) => s.type === 'connected');
    await c.close();
    await reading;
    expect(types[0]).toBe('disconnected');
    expect(types).toContain('reconnecting');
    expect(types.slice(-2)).toEqual(['connected', 'closed']);
  });

  it('a user-supplied Outbox (e.g. persistent) is used while offline and drained in order', async () => {
    const stored: Array<{ topic: string; payload: Uint8Array; at: number }> = [];
    const outbox = {
      get count() {
        return stored.length;
      },
      get bytes() {
        return stored.reduce((n, e) => n + e.payload.length, 0);
      },
      add(e: { topic: string; payload: Uint8Array; at: number }) {
        stored.push(e);
      },
      takeAll() {
        return stored.splice(0);
      },
      clear() {
        return stored.splice(0).length;
      },
    };
    const n = await fx.node();
    const port = n.port;
    const c = await client(url(n), { outbox, reconnectBackoff: { base: 20, max: 40 } });
    const got: string[] = [];
    c.subscribe('s', { callback: (m) => got.push(m.string()) });
    await n.close();
    await nextStatus(c, (s) => s.type === 'disconnected');
    c.publish('s', 'a');
    c.publish('s', 'b');
    expect(stored.map((e) => e.topic)).toEqual(['s', 's']);
    await fx.node({ port });
    await until(() => got.length === 2);
    expect(got).toEqual(['a', 'b']);
    expect(stored).toEqual([]);
  });

  it('reports a slow async-iterator consumer and counts what it dropped', async () => {
    const n = await fx.node();
    const c = await client(url(n));
    const sub = c.subscribe('f', { pendingLimit: 10 });
    const slow = nextStatus(c, (s) => s.type === 'slow-consumer');
    await c.flush();
    for (let i = 0; i < 25; i++) c.publish('f', String(i));
    expect(await slow).toMatchObject({ type: 'slow-consumer', source: 'client', sid: sub.sid, pattern: 'f' });
    await c.flush();
    expect(sub.pending).toBe(10);
    expect(sub.dropped).toBe(15);
    expect(sub.received).toBe(25);
  });
});

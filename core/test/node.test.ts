import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { FrameType, decodeWelcome, encodeBody, encodeFrame, decodeGoodbye, decodeFrames } from '@meshbus/proto';
import { nodeKit, RawClient } from '@meshbus/testkit';
import { silentLogger, startNode, ConfigError, type MeshNode, type NodeOptions } from '../src/index.js';

const kit = nodeKit({ start: startNode });
const node = (opts?: NodeOptions): Promise<MeshNode> => kit.node(opts);
const client = (n: MeshNode, hello?: Record<string, unknown> | false): Promise<RawClient> => kit.raw(n, hello);

describe('handshake', () => {
  it('answers HELLO with WELCOME carrying the node id and limits', async () => {
    const n = await node({ maxPayload: 4096 });
    const c = await client(n);
    const w = c.got.find((g) => g.type === FrameType.WELCOME)!;
    const body = decodeWelcome(w.payload);
    expect(body.node).toBe(n.id);
    expect(body.maxPayload).toBe(4096);
    expect(body.client).toMatch(/^[0-9a-f]{16}$/);
  });

  it('drops a client that never says HELLO', async () => {
    const n = await node({ handshakeTimeout: 100 });
    const c = await client(n, false);
    const e = await c.waitFor((g) => g.type === FrameType.ERROR);
    expect(e.error).toBe('MB_ERR_HANDSHAKE_TIMEOUT');
    await c.waitClosed();
  });

  it('refuses a frame before HELLO', async () => {
    const n = await node();
    const c = await client(n, false);
    c.pub('a.b', 'x');
    expect((await c.waitFor((g) => g.type === FrameType.ERROR)).error).toBe('MB_ERR_HANDSHAKE_REQUIRED');
    await c.waitClosed();
  });

  it('refuses a wrong token and an unsupported version', async () => {
    const n = await node({ token: 's3cret' });
    const bad = await client(n, { token: 'nope' });
    expect(bad.got.find((g) => g.type === FrameType.ERROR)?.error).toBe('MB_ERR_AUTH_FAILED');
    await bad.waitClosed();
    const old = await client(n, { v: [7, 9], token: 's3cret' });
    expect(old.got.find((g) => g.type === FrameType.ERROR)?.error).toBe('MB_ERR_UNSUPPORTED_VERSION');
    const good = await client(n, { token: 's3cret' });
    expect(good.got[0]!.type).toBe(FrameType.WELCOME);
  });

  it('reports a port in use with a typed error', async () => {
    const n = await node();
    await expect(startNode({ port: n.port, logger: silentLogger })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('routing', () => {
  it('routes by exact topic and wildcards, once per connection', async () => {
    const n = await node();
    const pub = await client(n);
    const sub = await client(n);
    sub.sub('orders.*.created', 1);
    sub.sub('orders.>', 2);
    sub.sub('orders.eu.created', 3);
    const other = await client(n);
    other.sub('payments.>', 1);
    await sub.flush();
    await other.flush();
    pub.pub('orders.eu.created', 'o1');
    pub.pub('orders.us', 'o2');
    pub.pub('payments.x', 'p1');
    pub.pub('nobody.listens', 'z');
    await pub.flush();
    await sub.waitFor((g) => g.topic === 'orders.us');
    await other.waitFor((g) => g.topic === 'payments.x');
    expect(sub.events().map((g) => [g.topic, g.payload.toString(), g.sid])).toEqual([
      ['orders.eu.created', 'o1', 0],
      ['orders.us', 'o2', 0],
    ]);
    expect(other.events().map((g) => g.topic)).toEqual(['payments.x']);
  });

  it('stops delivering after UNSUB and after the subscriber leaves', async () => {
    const n = await node();
    const pub = await client(n);
    const sub = await client(n);
    sub.sub('t.x', 5);
    await sub.flush();
    pub.pub('t.x', '1');
    await sub.waitFor((g) => g.topic === 't.x');
    sub.send({ type: FrameType.UNSUB, correlation: 5 });
    await sub.flush();
    pub.pub('t.x', '2');
    await pub.flush();
    await sub.flush();
    expect(sub.events()).toHaveLength(1);
    expect(n.table.size).toBe(0);
  });

  it('gives each event to one member of a queue group, with the member sid', async () => {
    const n = await node();
    const pub = await client(n);
    const members = [await client(n), await client(n), await client(n)];
    members.forEach((m, i) => m.sub('jobs.>', 10 + i, { q: 'workers' }));
    const watcher = await client(n);
    watcher.sub('jobs.>', 1);
    for (const m of [...members, watcher]) await m.flush();
    for (let i = 0; i < 30; i++) pub.pub('jobs.run', String(i));
    await pub.flush();
    await watcher.waitFor((g) => g.payload.toString() === '29');
    for (const m of members) await m.flush();
    const got = members.map((m) => m.events());
    expect(got.flat()).toHaveLength(30);
    expect(new Set(got.flat().map((g) => g.payload.toString())).size).toBe(30);
    got.forEach((list, i) => {
      expect(list.length).toBeGreaterThan(0);
      for (const g of list) expect(g.sid).toBe(10 + i);
    });
    expect(watcher.events()).toHaveLength(30);
  });

  it('does not echo to the publisher when it asked not to', async () => {
    const n = await node();
    const quiet = await client(n, { echo: false });
    quiet.sub('e.>', 1);
    const loud = await client(n);
    loud.sub('e.>', 1);
    await quiet.flush();
    await loud.flush();
    quiet.pub('e.1', 'a');
    loud.pub('e.2', 'b');
    await quiet.flush();
    await loud.waitFor((g) => g.topic === 'e.2');
    await quiet.waitFor((g) => g.topic === 'e.2');
    expect(quiet.events().map((g) => g.topic)).toEqual(['e.2']);
    expect(loud.events().map((g) => g.topic).sort()).toEqual(['e.1', 'e.2']);
  });
});

describe('request/reply', () => {
  it('routes a request and its reply, and answers no-responders at once', async () => {
    const n = await node();
    const svc = await client(n);
    svc.sub('svc.echo', 1);
    await svc.flush();
    const req = await client(n);
    const inbox = `_INBOX.${req.clientId}`;
    req.sub(`${inbox}.>`, 1);
    await req.flush();
    req.send({ type: FrameType.REQ, topic: 'svc.echo', correlation: 77, ext: { reply: `${inbox}.1` }, payload: Buffer.from('ping') });
    const r = await svc.waitFor((g) => g.type === FrameType.REQ);
    expect(r.correlation).toBe(77);
    svc.pub(`${inbox}.1`, 'pong', r.correlation);
    const reply = await req.waitFor((g) => g.topic === `${inbox}.1`);
    expect([reply.payload.toString(), reply.correlation]).toEqual(['pong', 77]);

    req.send({ type: FrameType.REQ, topic: 'svc.missing', correlation: 78, ext: { reply: `${inbox}.2` } });
    const e = await req.waitFor((g) => g.type === FrameType.ERROR);
    expect([e.error, e.correlation]).toEqual(['MB_ERR_NO_RESPONDERS', 78]);
  });
});

describe('limits and bad input', () => {
  it('carries payloads of 0 B, 1 B and the maximum size', async () => {
    const max = 64 * 1024;
    const n = await node({ maxPayload: max });
    const pub = await client(n);
    const sub = await client(n);
    sub.sub('p', 1);
    await sub.flush();
    const big = Buffer.alloc(max, 7);
    big[max - 1] = 9;
    pub.pub('p', new Uint8Array(0));
    pub.pub('p', Buffer.from([42]));
    pub.pub('p', big);
    await sub.waitFor((g) => g.payload.length === max);
    expect(sub.events().map((g) => g.payload.length)).toEqual([0, 1, max]);
    expect(sub.events()[2]!.payload.equals(big)).toBe(true);
  });

  it('rejects an over-limit payload with a typed error and keeps the connection', async () => {
    const n = await node({ maxPayload: 1000 });
    const pub = await client(n);
    const sub = await client(n);
    sub.sub('p', 1);
    await sub.flush();
    pub.pub('p', Buffer.alloc(1001), 5);
    const e = await pub.waitFor((g) => g.type === FrameType.ERROR);
    expect([e.error, e.correlation]).toEqual(['MB_ERR_PAYLOAD_TOO_LARGE', 5]);
    pub.pub('p', 'fine');
    await sub.waitFor((g) => g.payload.toString() === 'fine');
    expect(sub.events()).toHaveLength(1);
    // Far beyond the decoder limit: skipped without buffering, still not fatal.
    pub.pub('p', Buffer.alloc(1_200_000));
    const e2 = await pub.waitFor((g) => g.error === 'MB_ERR_FRAME_TOO_LARGE');
    expect(e2).toBeDefined();
    pub.pub('p', 'still');
    await sub.waitFor((g) => g.payload.toString() === 'still');
    expect(pub.closed).toBe(false);
  });

  it('answers bad topics with MB_ERR_BAD_TOPIC', async () => {
    const n = await node();
    const c = await client(n);
    c.pub('a.*', 'x', 1);
    c.pub('a..b', 'x', 2);
    c.sub('a.>.b', 3);
    await c.flush();
    expect(c.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.error, g.correlation])).toEqual([
      ['MB_ERR_BAD_TOPIC', 1],
      ['MB_ERR_BAD_TOPIC', 2],
      ['MB_ERR_BAD_TOPIC', 3],
    ]);
  });

  it('answers malformed bytes with an ERROR frame and a close, and keeps serving others', async () => {
    const n = await node();
    const good = await client(n);
    good.sub('ok', 1);
    await good.flush();
    const bad = await client(n);
    // Not HTTP: an HTTP request is answered in HTTP (bin/test/cli-wrong-port.test.ts).
    bad.socket.write(Buffer.from('hello, this is not meshbus at all\r\n'));
    const e = await bad.waitFor((g) => g.type === FrameType.ERROR);
    expect(e.error).toBe('MB_ERR_BAD_MAGIC');
    await bad.waitClosed();
    // A frame with a corrupted header CRC.
    const bad2 = await client(n);
    const f = encodeFrame({ type: FrameType.PUB, topic: 'ok', payload: Buffer.from('x') });
    f[20] ^= 0xff;
    bad2.socket.write(f);
    expect((await bad2.waitFor((g) => g.type === FrameType.ERROR)).error).toBe('MB_ERR_BAD_CRC');
    await bad2.waitClosed();
    const pub = await client(n);
    pub.pub('ok', 'still here');
    await good.waitFor((g) => g.payload.toString() === 'still here');
  });

  it('closes a connection that stops answering pings', async () => {
    const n = await node({ pingInterval: 60, maxPingsOut: 2 });
    const c = await client(n);
    // A raw client that never answers PING.
    const e = await c.waitFor((g) => g.type === FrameType.ERROR, 3000);
    expect(e.error).toBe('MB_ERR_STALE_CONNECTION');
    expect(c.got.filter((g) => g.type === FrameType.PING).length).toBeGreaterThanOrEqual(2);
    await c.waitClosed();
  });
});

describe('slow consumers', () => {
  /** A subscriber whose socket is paused: the node's queue for it fills up. */
  async function stalledSubscriber(n: MeshNode, slow: 'drop' | 'disconnect'): Promise<RawClient> {
    const c = await client(n);
    c.sub('flood', 1, { slow });
    await c.flush();
    c.socket.pause();
    return c;
  }

  it('pauses a bursting publisher instead of dropping for a subscriber that keeps up', async () => {
    const n = await node({ maxPending: 128 * 1024 });
    const sub = await client(n);
    sub.sub('burst', 1);
    await sub.flush();
    const pub = await client(n);
    const total = 3000; // 12 MiB in one burst, 100 times the bound
    for (let i = 0; i < total; i++) pub.pub('burst', Buffer.alloc(4096, i & 0xff));
    await pub.flush(20_000);
    for (let i = 0; i < 1000 && sub.events().length < total; i++) await new Promise((r) => setTimeout(r, 10));
    expect(sub.events()).toHaveLength(total);
    expect(n.stats.slowConsumers).toBe(0);
    expect(n.stats.dropped.slow).toBe(0);
  });

  it('disconnects a slow consumer while a healthy subscriber gets everything', async () => {
    const n = await node({ maxPending: 256 * 1024, maxStall: 200 });
    const slow = await stalledSubscriber(n, 'disconnect');
    const healthy = await client(n);
    healthy.sub('flood', 1);
    await healthy.flush();
    const pub = await client(n);
    const payload = Buffer.alloc(4096, 1);
    const total = 2000; // 8 MiB, far past the 256 KiB bound
    for (let i = 0; i < total; i++) pub.pub('flood', payload);
    await pub.flush(10_000);
    for (let i = 0; i < 500 && healthy.events().length < total; i++) await new Promise((r) => setTimeout(r, 10));
    expect(healthy.events()).toHaveLength(total);
    expect(n.stats.slowConsumers).toBe(1);
    slow.socket.resume();
    const e = await slow.waitFor((g) => g.type === FrameType.ERROR);
    expect(e.error).toBe('MB_ERR_SLOW_CONSUMER');
    await slow.waitClosed();
  });

  it("drops the oldest events for a 'drop' subscriber, bounded, and keeps it connected", async () => {
    const n = await node({ maxPending: 256 * 1024, maxStall: 200 });
    const slow = await stalledSubscriber(n, 'drop');
    const pub = await client(n);
    const total = 2000;
    for (let i = 0; i < total; i++) {
      const p = Buffer.alloc(4096);
      p.writeUInt32BE(i, 0);
      pub.pub('flood', p);
    }
    await pub.flush(10_000); // a drop reader never pauses the publisher: its oldest events are dropped
    const session = [...n.connections()].find((s) => s.subscriptionCount === 1)!;
    expect(session.pending).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
    expect(session.dropped).toBeGreaterThan(0);
    slow.socket.resume();
    pub.pub('flood', Buffer.alloc(4096, 0xff));
    await slow.waitFor((g) => g.payload[0] === 0xff && g.payload[1] === 0xff);
    const seqs = slow.events().map((g) => g.payload.readUInt32BE(0));
    expect(seqs.length).toBeLessThan(total);
    // What arrives is in order; the gap is at the old end, newest events survive.
    const numbered = seqs.slice(0, -1);
    expect([...numbered].sort((a, b) => a - b)).toEqual(numbered);
    expect(numbered.at(-1)).toBe(total - 1);
    expect(slow.closed).toBe(false);
    expect(n.stats.dropped.slow).toBeGreaterThan(0);
  });
});

describe('graceful shutdown', () => {
  it('sends GOODBYE with MB_ERR_DRAINING, closes clients and stops listening', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, peers: () => ['127.0.0.1:9999'] });
    const c = await client(n);
    await n.shutdown();
    const bye = await c.waitFor((g) => g.type === FrameType.GOODBYE);
    const body = decodeGoodbye(bye.payload);
    expect(body.code).toBe(2012);
    expect(body.reconnect).toEqual(['127.0.0.1:9999']);
    await c.waitClosed();
    await expect(RawClient.connect(n.port)).rejects.toThrow();
  });
});

it('does not crash on a burst of random bytes from many sockets', async () => {
  const n = await node();
  const socks = await Promise.all(
    Array.from({ length: 20 }, () => new Promise<net.Socket>((r) => { const s = net.connect(n.port, '127.0.0.1', () => r(s)); s.on('error', () => {}); })),
  );
  for (const s of socks) {
    s.write(encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) }));
    s.write(Buffer.from(Array.from({ length: 500 }, () => Math.floor(Math.random() * 256))));
  }
  await new Promise((r) => setTimeout(r, 100));
  for (const s of socks) s.destroy();
  const c = await client(n);
  expect(c.got[0]!.type).toBe(FrameType.WELCOME);
  expect(decodeFrames(encodeFrame({ type: FrameType.PING }))).toHaveLength(1);
});

import { createServer, type Server } from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  decodeGoodbye,
  FrameType,
  decodeWelcome,
  encodeFrame,
  messageLimit,
  readU32,
  WS_LARGE_FRAME,
  WS_MESSAGE_BYTES,
} from '@meshbus/proto';

/** The sizes of the frames laid back to back in a WebSocket message. */
function frameSizes(m: Uint8Array): number[] {
  const out: number[] = [];
  for (let o = 0; o + 4 <= m.length; o += out[out.length - 1]!) out.push(4 + readU32(m, o));
  return out;
}
import { frameWithExt, nodeKit, RawClient, RawWs, until } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import { WsGateway, wholeFrames, type WsGatewayOptions } from '../src/ws/index.js';
import { startHttp } from '../src/http/index.js';

const kit = nodeKit({ start: startNode });
const node = (opts?: NodeOptions): Promise<MeshNode> => kit.node(opts);

async function gateway(n: MeshNode, opts: WsGatewayOptions = {}): Promise<WsGateway> {
  const g = await new WsGateway(n, { port: 0, host: '127.0.0.1', ...opts }).listen();
  kit.defer(() => g.close());
  return g;
}

async function ws(g: WsGateway, o: Parameters<typeof RawWs.connect>[1] = {}, path = '/'): Promise<RawWs> {
  const c = await RawWs.connect(`ws://127.0.0.1:${g.port}${path}`, o);
  kit.defer(() => c.ws.terminate());
  return c;
}

const tcp = (n: MeshNode): Promise<RawClient> => kit.raw(n);

describe('ws gateway: handshake and limits', () => {
  it('HELLO → WELCOME over a WebSocket; the connection counts as kind ws', async () => {
    const n = await node({ name: 'w1' });
    const g = await gateway(n);
    const c = await ws(g, { hello: { name: 'browser' } });
    const w = c.got.find((x) => x.type === FrameType.WELCOME)!;
    expect(decodeWelcome(w.payload).node).toBe(n.id);
    const kinds = [...n.connections()].map((s) => [s.transport.kind, s.name, s.isOpen]);
    expect(kinds).toEqual([['ws', 'browser', true]]);
    expect(g.connectionCount).toBe(1);
    // The metrics endpoint counts it as a WebSocket connection.
    const http = await startHttp(n, { port: 0, host: '127.0.0.1', logger: false });
    kit.defer(() => http.close());
    const text = await (await fetch(`${http.url}/metrics`)).text();
    expect(text).toMatch(/^meshbus_connections\{kind="ws"\} 1$/m);
    expect(text).toMatch(/^meshbus_connections\{kind="tcp"\} 0$/m);
  });

  it('the first upgrades of a fresh gateway (ws loaded by the first) all complete: several at once, each with its WELCOME', async () => {
    const n = await node();
    const g = await gateway(n);
    const cs = await Promise.all([1, 2, 3, 4].map((i) => ws(g, { hello: { name: `c${i}` } })));
    for (const c of cs) expect(c.got.some((x) => x.type === FrameType.WELCOME)).toBe(true);
    expect(n.connectionCount).toBe(4);
  });

  it('the token check and handshake rules are the TCP ones', async () => {
    const n = await node({ token: 's3cret' });
    const g = await gateway(n);
    const bad = await ws(g, { hello: { token: 'nope' } });
    expect(bad.got.find((x) => x.type === FrameType.ERROR)?.error).toBe('MB_ERR_AUTH_FAILED');
    await bad.waitClosed();
    const good = await ws(g, { hello: { token: 's3cret' } });
    expect(good.got.some((x) => x.type === FrameType.WELCOME)).toBe(true);
    const early = await ws(g, { hello: false });
    early.pub('x', 'before hello');
    expect((await early.waitFor((x) => x.type === FrameType.ERROR)).error).toBe('MB_ERR_HANDSHAKE_REQUIRED');
    await early.waitClosed();
    expect(n.stats.authFailures).toBe(1);
  });

  it('refuses an origin outside the allow-list (403), accepts listed origins and non-browser clients', async () => {
    const n = await node();
    const g = await gateway(n, { origins: ['https://app.example.com', 'http://localhost:3000/'] });
    await expect(ws(g, { origin: 'https://evil.example.com' })).rejects.toThrow(/HTTP 403/);
    expect(n.stats.connectionsRefused).toBe(1);
    expect(n.connectionCount).toBe(0);
    const ok = await ws(g, { origin: 'https://APP.example.com' });
    expect(ok.got.some((x) => x.type === FrameType.WELCOME)).toBe(true);
    const ok2 = await ws(g, { origin: 'http://localhost:3000' });
    expect(ok2.got.some((x) => x.type === FrameType.WELCOME)).toBe(true);
    const noOrigin = await ws(g);
    expect(noOrigin.got.some((x) => x.type === FrameType.WELCOME)).toBe(true);
  });

  it('upgrades refused for their origin are logged once per address every 5 min, not once each (was: a line per attempt)', async () => {
    const lines: Array<{ msg: string; o: Record<string, unknown> }> = [];
    const rec = (o: object, msg?: string): void => void lines.push({ msg: msg ?? '', o: o as Record<string, unknown> });
    const n = await node({ logger: { ...silentLogger, info: rec, warn: rec } });
    const g = await gateway(n, { origins: ['https://app.example.com'] });
    for (let i = 0; i < 30; i++) await expect(ws(g, { origin: `https://evil${i}.example.com` })).rejects.toThrow(/HTTP 403/);
    expect(n.stats.connectionsRefused).toBe(30);
    const refused = lines.filter((l) => l.msg.startsWith('ws connection refused'));
    expect(refused).toHaveLength(1);
    expect(refused[0]!.o).toMatchObject({ remote: '127.0.0.1', refused: 1 });
  });

  it('closes a connection that sends a text message or a message ending inside a frame', async () => {
    const n = await node();
    const g = await gateway(n);
    const text = await ws(g);
    text.ws.send('hello');
    expect((await text.waitFor((x) => x.type === FrameType.ERROR)).error).toBe('MB_ERR_UNEXPECTED_FRAME');
    await text.waitClosed();
    // RFC 6455 §7.4.1: data it cannot accept is 1003, not a normal 1000.
    expect(text.closeCode).toBe(1003);
    const cut = await ws(g);
    const f = encodeFrame({ type: FrameType.PUB, topic: 'a.b', payload: Buffer.alloc(100, 7) });
    cut.ws.send(f.subarray(0, 80));
    expect((await cut.waitFor((x) => x.type === FrameType.ERROR)).error).toBe('MB_ERR_TRUNCATED');
    await cut.waitClosed();
    expect([cut.closeCode, cut.closeReason]).toEqual([1002, 'MB_ERR_TRUNCATED']);
    expect(wholeFrames(Buffer.concat([f, f]))).toBeUndefined();
    expect(wholeFrames(f.subarray(0, 2))).toMatch(/length prefix/);
  });

  it('closes a message over maxPayload with 1009', async () => {
    const n = await node();
    const g = await gateway(n, { maxPayload: 4096 });
    const c = await ws(g);
    c.pub('big', Buffer.alloc(8192));
    await c.waitClosed();
    expect(c.closeCode).toBe(1009);
    await until(() => n.connectionCount === 0);
  });

  it('closes with the RFC 6455 code of the error: 1002 protocol, 1008 policy, 1009 too big, 1013 full, 1001 going away', async () => {
    const n = await node({ token: 's3cret', maxConnections: 3, drainTimeout: 300 });
    const g = await gateway(n);
    const garbage = await ws(g, { hello: false });
    garbage.ws.send(Buffer.concat([Buffer.from([0, 0, 0, 64]), Buffer.alloc(64, 0xee)]));
    await garbage.waitClosed();
    expect(garbage.closeCode).toBe(1002);
    const early = await ws(g, { hello: false });
    early.pub('x', 'before hello');
    await early.waitClosed();
    expect([early.closeCode, early.closeReason]).toEqual([1002, 'MB_ERR_HANDSHAKE_REQUIRED']);
    const bad = await ws(g, { hello: { token: 'nope' } });
    await bad.waitClosed();
    expect([bad.closeCode, bad.closeReason]).toEqual([1008, 'MB_ERR_AUTH_FAILED']);
    await until(() => n.connectionCount === 0);
    const keep: RawWs[] = [];
    for (let i = 0; i < 3; i++) keep.push(await ws(g, { hello: { token: 's3cret' } }));
    const full = await ws(g, { hello: false });
    await full.waitClosed();
    expect([full.closeCode, full.closeReason]).toEqual([1013, 'MB_ERR_TOO_MANY_CONNECTIONS']);
    const stopping = n.shutdown();
    await keep[0]!.waitClosed();
    expect([keep[0]!.closeCode, keep[0]!.closeReason]).toEqual([1001, 'MB_ERR_DRAINING']);
    await stopping;
  });

  it('ws-level ping: a peer that stops answering pings is closed', async () => {
    const n = await node();
    const g = await gateway(n, { pingInterval: 100 });
    const live = await ws(g);
    const dead = await ws(g, { ws: { autoPong: false } });
    await dead.waitClosed(3000);
    expect(live.closed).toBe(false);
    expect(n.stats.staleConnections).toBe(1);
  });

  it('ws-level ping follows the shared liveness rule: a client that never pongs but keeps publishing stays open', async () => {
    const n = await node();
    const g = await gateway(n, { pingInterval: 100 });
    const publisher = await ws(g, { ws: { autoPong: false } });
    const silent = await ws(g, { ws: { autoPong: false } });
    let sent = 0;
    const timer = setInterval(() => {
      publisher.pub('ws.live', 'x');
      sent++;
    }, 25);
    try {
      await silent.waitClosed(3000);
      // 10 ping intervals of publishing: far past the one unanswered ping allowed.
      while (sent < 40 && !publisher.closed) await new Promise((r) => setTimeout(r, 25));
    } finally {
      clearInterval(timer);
    }
    expect(publisher.closed).toBe(false);
    expect(n.stats.staleConnections).toBe(1);
  });

  it('permessage-deflate is off by default and negotiated when enabled', async () => {
    const n = await node();
    const off = await gateway(n);
    const a = await ws(off, { ws: { perMessageDeflate: true } });
    expect(a.ws.extensions).toBe('');
    const on = await gateway(n, { perMessageDeflate: { threshold: 0 } });
    const b = await ws(on, { ws: { perMessageDeflate: true } });
    expect(b.ws.extensions).toContain('permessage-deflate');
    b.sub('z', 1);
    await b.flush();
    const t = await tcp(n);
    t.pub('z', 'x'.repeat(5000));
    expect((await b.waitFor((x) => x.type === FrameType.PUB)).payload.toString()).toBe('x'.repeat(5000));
  });

  it('refuses with MB_ERR_DRAINING while the node shuts down, and says GOODBYE to open connections', async () => {
    const n = await node({ drainTimeout: 300 });
    const g = await gateway(n);
    const c = await ws(g);
    const stopping = n.shutdown();
    const bye = await c.waitFor((x) => x.type === FrameType.GOODBYE);
    expect(decodeGoodbye(bye.payload).code).toBe(2012);
    const late = await ws(g, { hello: false });
    expect((await late.waitFor((x) => x.type === FrameType.ERROR)).error).toBe('MB_ERR_DRAINING');
    await stopping;
  });
});

describe('ws gateway mounted on an HTTP server', () => {
  it('takes upgrades on its path only; plain HTTP is left to the server', async () => {
    const n = await node();
    const server: Server = createServer((_req, res) => res.end('api'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kit.defer(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const g = await new WsGateway(n, { server }).listen();
    kit.defer(() => g.close());
    expect(g.port).toBe((server.address() as { port: number }).port);
    const c = await ws(g, {}, '/ws');
    expect(c.got.some((x) => x.type === FrameType.WELCOME)).toBe(true);
    await expect(ws(g, {}, '/other')).rejects.toThrow(/HTTP 404/);
    expect(await (await fetch(`http://127.0.0.1:${g.port}/v1/x`)).text()).toBe('api');
  });
});

describe('ws gateway: routing with TCP clients', () => {
  it('a WebSocket client and a TCP client exchange events both ways through one node', async () => {
    const n = await node();
    const g = await gateway(n);
    const w = await ws(g);
    const t = await tcp(n);
    w.sub('to.ws.>', 1);
    t.sub('to.tcp.*', 7);
    await w.flush();
    await t.flush();
    for (let i = 0; i < 50; i++) t.pub(`to.ws.${i}`, `t${i}`);
    // Several frames in one WebSocket message.
    w.send(...Array.from({ length: 50 }, (_, i) => ({ type: FrameType.PUB, topic: `to.tcp.${i}`, payload: Buffer.from(`w${i}`) })));
    await w.waitFor(() => w.events().length === 50);
    await t.waitFor(() => t.events().length === 50);
    expect(w.events().map((x) => x.payload.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
    expect(t.events().map((x) => x.payload.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `w${i}`));
    // A request from TCP answered over WebSocket.
    w.sub('svc.echo', 2);
    await w.flush();
    const inbox = `_INBOX.${t.clientId}.1`;
    t.sub(inbox, 9);
    await t.flush();
    t.send({ type: FrameType.REQ, topic: 'svc.echo', correlation: 5, payload: Buffer.from('ping'), ext: { reply: inbox } });
    const req = await w.waitFor((x) => x.topic === 'svc.echo');
    expect(req.payload.toString()).toBe('ping');
    w.send({ type: FrameType.PUB, topic: inbox, correlation: 5, payload: Buffer.from('pong') });
    expect((await t.waitFor((x) => x.topic === inbox)).payload.toString()).toBe('pong');
  });

  it('validates the extension block of PUB/REQ like TCP: malformed, REQ without reply and client positions get 1011 (issue #13)', async () => {
    const n = await node();
    const g = await gateway(n);
    const w = await ws(g);
    w.sub('>', 1);
    await w.flush();
    w.ws.send(frameWithExt({ type: FrameType.PUB, topic: 'x.a', correlation: 11, payload: Buffer.from('p') }, Uint8Array.from([0x81, 0xa1, 0x68, 0x05])));
    w.send(
      { type: FrameType.REQ, topic: 'x.a', correlation: 12, payload: Buffer.from('p') },
      { type: FrameType.PUB, topic: 'x.a', correlation: 13, ext: { position: { epoch: '0123456789abcdef', offset: 9 } }, payload: Buffer.from('p') },
      { type: FrameType.REQ, topic: 'x.a', correlation: 14, ext: { reply: '_INBOX.w.1', position: { epoch: '0123456789abcdef', offset: 9 } }, payload: Buffer.from('p') },
    );
    await w.flush();
    for (const corr of [11, 12, 13, 14]) expect(w.got.filter((x) => x.correlation === corr).map((x) => x.error)).toEqual(['MB_ERR_BAD_EXTENSION']);
    expect(w.events()).toEqual([]);
  });

  it('batches the frames of one tick into one binary message', async () => {
    const n = await node();
    const g = await gateway(n);
    const w = await ws(g);
    let messages = 0;
    w.ws.on('message', () => messages++);
    w.sub('b', 1);
    await w.flush();
    const t = await tcp(n);
    const before = messages;
    // One TCP chunk holding 200 events: routed in one tick, sent as one (or very few) messages.
    t.socket.write(Buffer.concat(Array.from({ length: 200 }, (_, i) => encodeFrame({ type: FrameType.PUB, topic: 'b', payload: Buffer.from(String(i)) }))));
    await w.waitFor(() => w.events().length === 200);
    expect(messages - before).toBeLessThanOrEqual(3);
  });

  it('a message holds at most 65,522 bytes (one 64 KiB read with its header) unless it is one larger frame; every message holds whole frames', async () => {
    const n = await node();
    const g = await gateway(n);
    const w = await ws(g);
    const sizes: number[] = [];
    const broken: string[] = [];
    w.ws.on('message', (d: Buffer) => {
      sizes.push(d.length);
      const why = wholeFrames(d);
      if (why) broken.push(why);
    });
    w.sub('m', 1);
    await w.flush();
    const t = await tcp(n);
    const ev = (n: number, fill: number): Buffer => encodeFrame({ type: FrameType.PUB, topic: 'm', payload: Buffer.alloc(n, fill) });
    const lens = [54_000, 50_000, 20_000, 20_000, 100_000, 20_000, 20_000];
    const input = lens.map((len, i) => ev(len, i));
    const before = sizes.length;
    // Read in 64 KiB chunks: the 50 KB event completes in the second read, in the same tick as the
    // 20 KB one after it (70 KB together: before, one message of both); the 100 KB event goes alone.
    t.socket.write(Buffer.concat(input));
    await w.waitFor(() => w.events().length === lens.length);
    expect(w.events().map((e) => e.payload.length)).toEqual(lens);
    expect(broken).toEqual([]);
    const out = sizes.slice(before);
    expect(out.filter((b) => b > 65_522)).toEqual([input[4]!.length]);
    expect(out.reduce((a, b) => a + b, 0)).toBe(input.reduce((a, b) => a + b.length, 0));
  });
  it('runs of events are cut into messages between frames: a frame of 1 KiB or more joins a message only within WS_MESSAGE_BYTES (SPEC 2; was one message per 64 KiB run, which a reader copies)', async () => {
    const n = await node();
    const g = await gateway(n);
    const w = await ws(g);
    const messages: Buffer[] = [];
    w.ws.on('message', (d: Buffer) => messages.push(Buffer.from(d)));
    w.sub('r', 1);
    await w.flush();
    const t = await tcp(n);
    const before = messages.length;
    // 4 KB events, then 100-byte ones, each kind 60 KB in one write: runs of up to 64 KiB at the node.
    const ev = (size: number, fill: number): Buffer => encodeFrame({ type: FrameType.PUB, topic: 'r', payload: Buffer.alloc(size, fill) });
    const input = [...Array.from({ length: 15 }, (_, i) => ev(4000, i)), ...Array.from({ length: 400 }, (_, i) => ev(100, i))];
    t.socket.write(Buffer.concat(input));
    await w.waitFor(() => w.events().length === input.length);
    const out = messages.slice(before);
    for (const m of out) {
      expect(wholeFrames(m)).toBeUndefined();
      // Each frame joined its message within the limit for its size (a first frame goes whatever its size).
      let at = 0;
      for (const f of frameSizes(m)) {
        if (at > 0) expect(at + f).toBeLessThanOrEqual(messageLimit(f));
        at += f;
      }
    }
    const large = out.filter((m) => Math.min(...frameSizes(m)) >= WS_LARGE_FRAME);
    expect(large.length).toBeGreaterThanOrEqual(3);
    expect(large.every((m) => m.length <= WS_MESSAGE_BYTES)).toBe(true);
    // The small events go in messages of up to 64 KiB (fewer, larger messages: a system call each).
    expect(out.length - large.length).toBeLessThanOrEqual(2);
    expect(out.reduce((a, m) => a + m.length, 0)).toBe(input.reduce((a, b) => a + b.length, 0));
    expect(n.stats.dropped.slow).toBe(0);
  });
  it('a queue-group delivery (a rewritten header, then the rest of the frame) is never cut from its header at the message size', async () => {
    const n = await node();
    const g = await gateway(n);
    const w = await ws(g);
    let messages = 0;
    const broken: string[] = [];
    w.ws.on('message', (d: Buffer) => {
      messages++;
      const why = wholeFrames(d);
      if (why) broken.push(why);
    });
    // A queue member: each delivery names its sid, written as a header copy and the frame's rest.
    w.sub('q', 1, { q: 'g' });
    await w.flush();
    const t = await tcp(n);
    // 100-byte events, 400 KB in one write: the node reads them 64 KiB at a time, so a message fills
    // up to its size in every read, and the frame that does not fit lands at every offset.
    const count = 4_000;
    const payload = (i: number): Buffer => Buffer.from(String(i).padStart(30, '0'));
    t.socket.write(Buffer.concat(Array.from({ length: count }, (_, i) => encodeFrame({ type: FrameType.PUB, topic: 'q', payload: payload(i) }))));
    await w.waitFor(() => w.events().length === count, 30_000).catch(() => undefined);
    expect(broken).toEqual([]);
    expect(messages).toBeGreaterThan(10);
    expect(w.events().map((e) => e.payload.toString())).toEqual(Array.from({ length: count }, (_, i) => payload(i).toString()));
  });
});

describe('ws gateway: slow consumers', () => {
  /** A WebSocket subscriber that stops reading: the node's queue for it fills up. */
  async function stalled(g: WsGateway, slow: 'drop' | 'disconnect'): Promise<RawWs> {
    const c = await ws(g);
    c.sub('flood', 1, { slow });
    await c.flush();
    c.ws.pause();
    return c;
  }

  it('disconnects a slow WebSocket consumer (MB_ERR_SLOW_CONSUMER) while a TCP subscriber gets everything', async () => {
    const n = await node({ maxPending: 256 * 1024, maxStall: 200 });
    const g = await gateway(n);
    const slow = await stalled(g, 'disconnect');
    const healthy = await tcp(n);
    healthy.sub('flood', 1);
    await healthy.flush();
    const pub = await tcp(n);
    const total = 2000;
    const payload = Buffer.alloc(4096, 1);
    for (let i = 0; i < total; i++) pub.pub('flood', payload);
    await pub.flush(20_000);
    await until(() => healthy.events().length === total, 'every event at the healthy client', 10_000);
    expect(n.stats.slowConsumers).toBe(1);
    slow.ws.resume();
    expect((await slow.waitFor((x) => x.type === FrameType.ERROR)).error).toBe('MB_ERR_SLOW_CONSUMER');
    await slow.waitClosed();
  });

  it("drops the oldest events for a 'drop' WebSocket subscriber, bounded, and keeps it connected", async () => {
    const n = await node({ maxPending: 256 * 1024, maxStall: 200 });
    const g = await gateway(n);
    const slow = await stalled(g, 'drop');
    const pub = await tcp(n);
    const total = 2000;
    for (let i = 0; i < total; i++) {
      const p = Buffer.alloc(4096);
      p.writeUInt32BE(i, 0);
      pub.pub('flood', p);
    }
    await pub.flush(20_000);
    const session = [...n.connections()].find((s) => s.transport.kind === 'ws')!;
    expect(session.pending).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);
    expect(session.dropped).toBeGreaterThan(0);
    slow.ws.resume();
    pub.pub('flood', Buffer.alloc(4096, 0xff));
    await slow.waitFor((x) => x.payload[0] === 0xff && x.payload[1] === 0xff, 10_000);
    const seqs = slow.events().slice(0, -1).map((x) => x.payload.readUInt32BE(0));
    expect(seqs.length).toBeLessThan(total);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(seqs.at(-1)).toBe(total - 1);
    expect(slow.closed).toBe(false);
  });
});

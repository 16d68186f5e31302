import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameDecoder, FrameType, encodeBody, encodeFrame, type Frame } from '@meshbus/proto';
import { Fixture, until, url } from '@meshbus/testkit';
import { WsTransport, connect, nodeTransport, type Msg, type WebSocketLike } from '../src/index.js';
import { NodeWsTransport } from '../src/node-ws-transport.js';
import { parseServer } from '../src/servers.js';
import { wholeFrames } from '@meshbus/core/ws';
import { wsBridge } from './helpers.js';

const fx = new Fixture();
afterEach(() => fx.teardown());

/** A WHATWG-shaped WebSocket the test drives by hand. */
class FakeWebSocket implements WebSocketLike {
  static last: FakeWebSocket | undefined;
  binaryType = 'blob';
  readyState = 0;
  bufferedAmount = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null = null;
  sent: Uint8Array[] = [];
  closedWith: number | undefined;
  constructor(readonly url: string) {
    FakeWebSocket.last = this;
  }
  send(data: Uint8Array): void {
    this.sent.push(data);
  }
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
}

async function opened(t: WsTransport): Promise<FakeWebSocket> {
  const p = t.connect(parseServer('ws://127.0.0.1:1/'), { timeout: 1000 });
  const ws = FakeWebSocket.last!;
  ws.open();
  await p;
  return ws;
}

const frames = (n: number): Buffer => Buffer.concat(Array.from({ length: n }, (_, i) => encodeFrame({ type: FrameType.PUB, topic: 't', payload: Buffer.from(`e${i}`) })));

function decodeAll(chunks: Uint8Array[]): Frame[] {
  const got: Frame[] = [];
  const d = new FrameDecoder();
  for (const c of chunks) d.push(c, (f) => got.push(f));
  return got;
}

describe('sdk WsTransport', () => {
  it("binaryType: 'arraybuffer' by default (WHATWG), 'nodebuffer' when asked; the Node entry asks for it", async () => {
    await opened(new WsTransport(FakeWebSocket));
    expect(FakeWebSocket.last!.binaryType).toBe('arraybuffer');
    await opened(new WsTransport(FakeWebSocket, { binaryType: 'nodebuffer' }));
    expect(FakeWebSocket.last!.binaryType).toBe('nodebuffer');
    const t = nodeTransport(parseServer('ws://127.0.0.1:1/'));
    expect(t).toBeInstanceOf(WsTransport);
    expect((t as unknown as { options: { binaryType?: string } }).options.binaryType).toBe('nodebuffer');
  });

  it('several frames in one message, delivered as a view inside a larger buffer (nodebuffer) or as an ArrayBuffer, are decoded in order', async () => {
    const t = new WsTransport(FakeWebSocket, { binaryType: 'nodebuffer' });
    const chunks: Uint8Array[] = [];
    t.onData = (c) => chunks.push(c);
    const ws = await opened(t);
    const msg = frames(5);
    // A view with other bytes on both sides in the same ArrayBuffer, as `ws` hands out a message read with others.
    const around = Buffer.concat([Buffer.alloc(7, 0xee), msg, Buffer.alloc(9, 0xee)]);
    ws.onmessage!({ data: around.subarray(7, 7 + msg.length) });
    const three = frames(3);
    const ab = new ArrayBuffer(three.length);
    new Uint8Array(ab).set(three);
    ws.onmessage!({ data: ab });
    expect(chunks.map((c) => c.length)).toEqual([msg.length, three.length]);
    expect(decodeAll(chunks).map((f) => Buffer.from(f.payload).toString())).toEqual(['e0', 'e1', 'e2', 'e3', 'e4', 'e0', 'e1', 'e2']);
  });

  it('a text message ends the connection with MB_ERR_CONNECTION_CLOSED', async () => {
    const t = new WsTransport(FakeWebSocket, { binaryType: 'nodebuffer' });
    let reason: Error | undefined;
    t.onClose = (e) => (reason = e);
    const ws = await opened(t);
    ws.onmessage!({ data: 'hello' });
    expect((reason as { code?: string } | undefined)?.code).toBe('MB_ERR_CONNECTION_CLOSED');
    expect(ws.closedWith).toBe(1002);
  });
});

describe('Node SDK over ws:// (the `ws` package, Buffers)', () => {
  it('a burst a TCP publisher writes in one chunk reaches the ws:// subscriber whole and in order, payloads of 1 B to 8 KiB intact', async () => {
    const n = await fx.node();
    // The bridge sends each TCP chunk of whole frames as one WebSocket message: many frames per message.
    const bridge = await wsBridge(n.port);
    fx.closers.push(() => bridge.close());
    const sub = fx.track(await connect(`ws://127.0.0.1:${bridge.port}/`));
    const got: Msg[] = [];
    sub.subscribe('burst', { callback: (m) => got.push(m) });
    await sub.flush();
    const sizes = Array.from({ length: 300 }, (_, i) => 1 + ((i * 977) % 8192));
    const payload = (i: number): Buffer => Buffer.alloc(sizes[i]!, i & 0xff);
    const raw = await rawPublisher(url(n));
    raw.write(Buffer.concat(sizes.map((_, i) => encodeFrame({ type: FrameType.PUB, topic: 'burst', payload: payload(i) }))));
    await until(() => got.length === sizes.length);
    got.forEach((m, i) => expect(Buffer.from(m.data).equals(payload(i))).toBe(true));
  });
});

describe('Node SDK over ws:// (the `ws` package, Buffers)', () => {
  it('a message holds at most 65,522 bytes of whole frames (one 64 KiB read of the node with its header) unless it is one larger frame', async () => {
    const n = await fx.node();
    const sizes: number[] = [];
    const broken: string[] = [];
    const bridge = await wsBridge(n.port, (m) => {
      sizes.push(m.length);
      const why = wholeFrames(m);
      if (why) broken.push(why);
    });
    fx.closers.push(() => bridge.close());
    const sub = fx.track(await connect(`127.0.0.1:${n.port}`));
    const got: Msg[] = [];
    sub.subscribe('cut', { callback: (m) => got.push(m) });
    await sub.flush();
    const pub = fx.track(await connect(`ws://127.0.0.1:${bridge.port}/`));
    // Both encodings of the connection's batch: payloads over 2 KiB go as [head, payload], smaller ones
    // are copied into its slab. 54 KB + 50 KB used to leave as one message of both; 100 KB goes alone.
    const lens = [54_000, 50_000, 20_000, 20_000, 100_000, ...Array.from({ length: 40 }, () => 4096), ...Array.from({ length: 700 }, () => 128), 30_000];
    const payload = (i: number): Buffer => Buffer.alloc(lens[i]!, i & 0xff);
    const before = sizes.length;
    lens.forEach((_, i) => pub.publish('cut', payload(i)));
    await pub.flush();
    await until(() => got.length === lens.length);
    got.forEach((m, i) => expect(Buffer.from(m.data).equals(payload(i))).toBe(true));
    expect(broken).toEqual([]);
    const out = sizes.slice(before);
    const big = out.filter((b) => b > 65_522);
    expect(big).toHaveLength(1);
    expect(big[0]).toBeGreaterThan(100_000);
    expect(out.length).toBeGreaterThan(5);
  });

  it('message buffers are reused once ws has written them: bursts of 4 KiB events sent back to back arrive intact and in order', async () => {
    const n = await fx.node();
    const bridge = await wsBridge(n.port);
    fx.closers.push(() => bridge.close());
    const sub = fx.track(await connect(`127.0.0.1:${n.port}`));
    const got: Msg[] = [];
    sub.subscribe('reuse', { callback: (m) => got.push(m) });
    await sub.flush();
    const t = nodeTransport(parseServer(`ws://127.0.0.1:${bridge.port}/`));
    expect(t).toBeInstanceOf(NodeWsTransport);
    const pub = fx.track(await connect(`ws://127.0.0.1:${bridge.port}/`));
    // 20 bursts of 64 events (~4 messages each), the next burst sent while the last one's messages may still be
    // in the socket: every message is gathered into a pooled buffer, so a buffer reused too early would corrupt one.
    const payload = (i: number): Buffer => Buffer.alloc(4096, i & 0xff).fill((i >> 8) & 0xff, 0, 2);
    let i = 0;
    for (let burst = 0; burst < 20; burst++) {
      for (let k = 0; k < 64; k++) pub.publish('reuse', payload(i++));
      if (burst % 5 === 4) await pub.flush();
      else await new Promise((r) => setImmediate(r));
    }
    await pub.flush();
    await until(() => got.length === i);
    got.forEach((m, j) => expect(Buffer.from(m.data).equals(payload(j))).toBe(true));
  });
});

/** A TCP connection that has said HELLO and can write raw frames. */
async function rawPublisher(address: string): Promise<net.Socket> {
  const [host, port] = address.split(':');
  const s = net.connect(Number(port), host);
  fx.closers.push(async () => void s.destroy());
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(encodeFrame({ type: FrameType.HELLO, correlation: 1, payload: encodeBody({ v: [1, 1], name: 'raw' }) }));
  await new Promise((r) => s.once('data', r));
  return s;
}

import net from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { BATCH_BYTES, FrameDecoder, FrameType, WS_LARGE_FRAME, WS_MESSAGE_BYTES, readU32 } from '@meshbus/proto';
import { Fixture, until } from '@meshbus/testkit';
import { connect, type Msg } from '../src/index.js';
import { wsBridge } from './helpers.js';

const fx = new Fixture();
afterEach(() => fx.teardown());

/** One WebSocket frame as it crossed the wire from the client. */
interface WireFrame {
  opcode: number;
  masked: boolean;
  key: number;
  /** The payload, unmasked. */
  payload: Buffer;
}

/**
 * A TCP proxy in front of `target` that keeps every byte the client sends
 * (the HTTP upgrade request, then WebSocket frames as written on the wire).
 */
async function tapProxy(target: number): Promise<{ port: number; sent: () => Buffer }> {
  const got: Buffer[] = [];
  const server = net.createServer((c) => {
    const up = net.connect(target, '127.0.0.1');
    c.on('data', (d) => {
      got.push(Buffer.from(d));
      up.write(d);
    });
    up.on('data', (d) => c.write(d));
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
    c.on('error', () => up.destroy());
    up.on('error', () => c.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fx.closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, sent: () => Buffer.concat(got) };
}

/** Parses the client's side of a WebSocket connection (RFC 6455 §5.2) after its upgrade request. */
function wireFrames(bytes: Buffer): WireFrame[] {
  let o = bytes.indexOf('\r\n\r\n') + 4;
  const out: WireFrame[] = [];
  while (bytes.length - o >= 2) {
    const opcode = bytes[o]! & 0x0f;
    const masked = (bytes[o + 1]! & 0x80) !== 0;
    let len = bytes[o + 1]! & 0x7f;
    let h = 2;
    if (len === 126) {
      len = bytes.readUInt16BE(o + 2);
      h = 4;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(o + 2));
      h = 10;
    }
    const key = masked ? bytes.readUInt32BE(o + h) : 0;
    if (masked) h += 4;
    if (bytes.length - o < h + len) break;
    const payload = Buffer.from(bytes.subarray(o + h, o + h + len));
    if (masked) for (let i = 0; i < len; i++) payload[i]! ^= bytes[o + h - 4 + (i & 3)]!;
    out.push({ opcode, masked, key, payload });
    o += h + len;
  }
  return out;
}

/** Counts `ws`'s `send` calls made by client sockets (the bridge's server sockets send too). */
function countClientSends(): { calls: () => number; restore: () => void } {
  const original = WebSocket.prototype.send;
  let calls = 0;
  WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket['send']>) {
    if (this.url) calls++;
    return original.apply(this, args);
  } as WebSocket['send'];
  return { calls: () => calls, restore: () => void (WebSocket.prototype.send = original) };
}

/** Publishes `n` events of `size` bytes over ws:// through a tap, in bursts; returns what the tap saw and what a TCP subscriber got. */
async function publishThroughTap(opts: { n: number; size: number; deflate: boolean }): Promise<{ wire: WireFrame[]; got: Msg[]; payload: (i: number) => Buffer; wsSends: number }> {
  const node = await fx.node();
  const bridge = await wsBridge(node.port, undefined, opts.deflate ? { perMessageDeflate: { threshold: 0 } } : {});
  fx.closers.push(() => bridge.close());
  const tap = await tapProxy(bridge.port);
  const sub = fx.track(await connect(`127.0.0.1:${node.port}`));
  const got: Msg[] = [];
  sub.subscribe('mask', { callback: (m) => got.push(m) });
  await sub.flush();
  const pub = fx.track(await connect(`ws://127.0.0.1:${tap.port}/`, { wsDeflate: opts.deflate }));
  const payload = (i: number): Buffer => Buffer.alloc(opts.size, (i * 31 + 7) & 0xff).fill(i & 0xff, 0, 1);
  const spy = countClientSends();
  try {
    for (let i = 0; i < opts.n; i++) {
      pub.publish('mask', payload(i));
      // Bursts of 64, the next one made while the last one's messages may still be in the socket.
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
    await pub.flush();
  } finally {
    spy.restore();
  }
  await until(() => got.length === opts.n);
  return { wire: wireFrames(tap.sent()), got, payload, wsSends: spy.calls() };
}

/** The message is meshbus frames laid back to back, the last one ending with it. */
function wholeFrames(m: Buffer): boolean {
  let o = 0;
  while (o + 4 <= m.length) o += 4 + readU32(m, o);
  return o === m.length;
}

/** The meshbus frames inside the client's binary messages, in order. */
function meshbusPayloads(wire: WireFrame[]): Buffer[] {
  const d = new FrameDecoder();
  const out: Buffer[] = [];
  for (const f of wire) if (f.opcode === 2) d.push(f.payload, (fr) => fr.type === FrameType.PUB && out.push(Buffer.from(fr.payload)));
  return out;
}

describe('Node SDK over ws://: messages masked in place in reused buffers', () => {
  it('every message is masked (RFC 6455 §5.3) with a fresh non-zero key, events arrive intact and in order, and none goes through ws.send', async () => {
    const r = await publishThroughTap({ n: 640, size: 4096, deflate: false });
    r.got.forEach((m, i) => expect(Buffer.from(m.data).equals(r.payload(i))).toBe(true));
    const binary = r.wire.filter((f) => f.opcode === 2);
    expect(binary.length).toBeGreaterThan(40);
    expect(binary.every((f) => f.masked && f.key !== 0)).toBe(true);
    // 32-bit random keys: equal ones among ~50 messages would mean a key reused, not chance.
    expect(new Set(binary.map((f) => f.key)).size).toBe(binary.length);
    // What crossed the wire, unmasked, is exactly what was published (the pooled buffers were not reused early).
    const sent = meshbusPayloads(r.wire);
    expect(sent).toHaveLength(640);
    sent.forEach((p, i) => expect(p.equals(r.payload(i))).toBe(true));
    expect(r.wsSends).toBe(0);
  });

  it('messages hold whole frames: events of 1 KiB or more in messages of at most WS_MESSAGE_BYTES, smaller ones up to BATCH_BYTES (SPEC 2; was 64 KiB: a node copied nearly every one, spanning two of its reads)', async () => {
    for (const size of [4096, 100]) {
      const r = await publishThroughTap({ n: 640, size, deflate: false });
      const binary = r.wire.filter((f) => f.opcode === 2);
      expect(binary.every((f) => wholeFrames(f.payload))).toBe(true);
      const limit = size >= WS_LARGE_FRAME ? WS_MESSAGE_BYTES : BATCH_BYTES;
      expect(binary.every((f) => f.payload.length <= limit)).toBe(true);
      // Full messages, not one per event: a burst of 64 fills them (at 100 B a burst is one message).
      expect(Math.max(...binary.map((f) => f.payload.length))).toBeGreaterThan(size > 1000 ? WS_MESSAGE_BYTES - size - 200 : 64 * size);
      expect(meshbusPayloads(r.wire)).toHaveLength(640);
    }
  });

  it('small events and control frames (one slab run per message) take the same path', async () => {
    const r = await publishThroughTap({ n: 2000, size: 16, deflate: false });
    r.got.forEach((m, i) => expect(Buffer.from(m.data).equals(r.payload(i))).toBe(true));
    expect(r.wire.filter((f) => f.opcode === 2).every((f) => f.masked && f.key !== 0)).toBe(true);
    expect(r.wsSends).toBe(0);
  });

  it('with permessage-deflate negotiated, messages go through ws.send (its compression queue keeps the order) and arrive in order', async () => {
    const r = await publishThroughTap({ n: 640, size: 4096, deflate: true });
    r.got.forEach((m, i) => expect(Buffer.from(m.data).equals(r.payload(i))).toBe(true));
    expect(r.wsSends).toBeGreaterThan(0);
  });
});

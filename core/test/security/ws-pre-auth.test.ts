import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { FrameDecoder, FrameType, codeFromNumber, decodeError } from '@meshbus/proto';
import { silentLogger, startNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { RawWs } from '@meshbus/testkit';

/**
 * What a WebSocket client may send before its HELLO is accepted (issue #13),
 * bounded with ws's public API and the socket's own events only: a message
 * bigger than the pre-auth bound is refused while it arrives (ERROR
 * MB_ERR_FRAME_TOO_LARGE, close 1009), not once buffered, and a stream of
 * control frames or empty messages cannot go on until the handshake timeout.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function gateway(maxHelloSize = 8192): Promise<WsGateway> {
  const n = await startNode({ port: 0, logger: silentLogger, maxHelloSize, handshakeTimeout: 30_000 });
  cleanups.push(() => n.close());
  const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  cleanups.push(() => g.close());
  return g;
}

/** A hand-made WebSocket client: the upgrade, then whatever bytes the test writes. */
async function rawUpgrade(port: number): Promise<{ socket: net.Socket; received: () => Buffer; closed: () => boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  cleanups.push(() => void socket.destroy());
  socket.on('error', () => {});
  let buf = Buffer.alloc(0);
  let closed = false;
  socket.on('data', (c: Buffer) => (buf = Buffer.concat([buf, c])));
  socket.on('close', () => (closed = true));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const deadline = Date.now() + 5000;
  while (!buf.includes('\r\n\r\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  expect(buf.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
  const start = buf.indexOf('\r\n\r\n') + 4;
  return { socket, received: () => buf.subarray(start), closed: () => closed };
}

/** Server frames (unmasked) in `b`: opcode and payload each. */
function serverFrames(b: Buffer): Array<{ op: number; payload: Buffer }> {
  const out = [];
  let off = 0;
  while (off + 2 <= b.length) {
    let len = b[off + 1]! & 0x7f;
    let at = off + 2;
    if (len === 126) {
      len = b.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      len = Number(b.readBigUInt64BE(at));
      at += 8;
    }
    if (at + len > b.length) break;
    out.push({ op: b[off]! & 0x0f, payload: b.subarray(at, at + len) });
    off = at + len;
  }
  return out;
}

// 1.5 MiB fits the gateway's maxPayload (the node's largest frame + 64 KiB): only the pre-auth bound
// stops it. 64 MiB is past maxPayload too: ws refuses its header by itself (close 1009, no ERROR frame).
it.each([
  [1.5 * 1024 * 1024, ['MB_ERR_FRAME_TOO_LARGE']],
  [64 * 1024 * 1024, []],
])('a pre-auth message claiming %d bytes is refused while it arrives, close 1009, before 1 MiB was sent', async (claimed, errorsExpected) => {
  const g = await gateway();
  const c = await rawUpgrade(g.port);
  // FIN + binary, masked, 64-bit length, mask key 0 (the payload goes as is).
  const header = Buffer.alloc(14);
  header[0] = 0x82;
  header[1] = 0x80 | 127;
  header.writeBigUInt64BE(BigInt(claimed), 2);
  c.socket.write(header);
  let sent = 0;
  const chunk = Buffer.alloc(16 * 1024, 0x41);
  while (!c.closed() && sent < 1024 * 1024) {
    await new Promise<void>((r) => c.socket.write(chunk, () => r()));
    sent += chunk.length;
    await new Promise((r) => setImmediate(r));
  }
  const deadline = Date.now() + 5000;
  while (!c.closed() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  expect(c.closed()).toBe(true);
  expect(sent).toBeLessThan(1024 * 1024);
  const frames = serverFrames(c.received());
  const errors: string[] = [];
  for (const b of frames.filter((f) => f.op === 0x2)) {
    new FrameDecoder().push(b.payload, (f) => f.type === FrameType.ERROR && errors.push(codeFromNumber(decodeError(f.payload).code)), () => {});
  }
  expect(errors).toEqual(errorsExpected);
  const close = frames.find((f) => f.op === 0x8)!;
  expect(close.payload.readUInt16BE(0)).toBe(1009);
});

it('pings and empty messages before HELLO count against the bound: the connection is refused instead of kept until the handshake timeout', async () => {
  const g = await gateway(1024);
  const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`, { hello: false });
  cleanups.push(() => c.ws.terminate());
  // A few pings (a flood of them ws answers by terminating on its own), then empty messages: 6 bytes each on the wire.
  for (let i = 0; i < 10; i++) c.ws.ping(Buffer.alloc(100));
  // The bound before HELLO is maxHelloSize + 64 KiB (room for frames batched with it): 20,000 empty messages are 120 KB.
  for (let i = 0; i < 20_000 && c.ws.readyState === 1; i++) {
    c.ws.send(Buffer.alloc(0));
    if (i % 500 === 0) await new Promise((r) => setImmediate(r));
  }
  await c.waitClosed();
  expect(c.got.map((x) => x.error)).toEqual(['MB_ERR_FRAME_TOO_LARGE']);
  expect(c.closeCode).toBe(1009);
});

it('after HELLO the bound is gone: messages up to the gateway maxPayload pass', async () => {
  const g = await gateway(1024);
  const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`);
  cleanups.push(() => c.ws.terminate());
  c.sub('big', 1);
  c.pub('big', Buffer.alloc(200 * 1024, 1));
  const got = await c.waitFor((x) => x.topic === 'big');
  expect(got.payload.length).toBe(200 * 1024);
  expect(c.closed).toBe(false);
});

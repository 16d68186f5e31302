import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '@meshbus/testkit';
import { NodeWsTransport } from '../src/node-ws-transport.js';
import { parseServer } from '../src/servers.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A ws:// server whose one connection can stop reading (its socket paused: the kernel buffers fill, then the client's socket queues). */
async function stallingServer(): Promise<{ port: number; got: Buffer[]; stall: () => void; resume: () => void }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
  const got: Buffer[] = [];
  let socket: Socket | undefined;
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    socket = req.socket as Socket;
    ws.on('message', (d: Buffer) => got.push(Buffer.from(d)));
  });
  return {
    port: (wss.address() as { port: number }).port,
    got,
    stall: () => socket!.pause(),
    resume: () => socket!.resume(),
  };
}

/** Message `i`: 1 KiB, its index in the first 4 bytes, a pattern of it after. */
const message = (i: number): Buffer => {
  const b = Buffer.alloc(1024, (i * 13 + 5) & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
};

describe('NodeWsTransport while the server stops reading (review 2026-11-30)', () => {
  it('a small message waiting in the socket holds about its size, not a 64 KiB buffer, and every message arrives intact and in order once the server reads again', async () => {
    const server = await stallingServer();
    const t = new NodeWsTransport(WebSocket as never, { binaryType: 'nodebuffer' });
    await t.connect(parseServer(`ws://127.0.0.1:${server.port}/`), { timeout: 5000 });
    closers.push(() => t.close());
    await until(() => server.got.length === 0 && t.pendingBytes === 0);
    server.stall();

    // One message a tick, as the connection sends (one send per tick's batch), until the
    // kernel's buffers are full and messages wait in the client's socket.
    let i = 0;
    while (t.pendingBytes < 256 * 1024) {
      t.send([message(i++)]);
      await tick();
      expect(i).toBeLessThan(200_000);
    }
    // Then 1,000 more (1 MiB): they all wait in the socket, each holding what the transport gave it.
    globalThis.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    const pendingBefore = t.pendingBytes;
    for (let k = 0; k < 1000; k++) {
      t.send([message(i++)]);
      await tick();
    }
    const held = process.memoryUsage().arrayBuffers - before;
    const queued = t.pendingBytes - pendingBefore;
    // (They stay in the socket: the kernel buffers were full; a little slack for what it still took.)
    expect(queued).toBeGreaterThan(900 * 1024);
    // Main: each waiting message held a whole pooled 64 KiB buffer (64 MiB here for 1 MiB queued),
    // a stalled node cost 64 times the bytes it was sent. Bound: 8 MiB (the bytes, their headers, slack).
    expect(held).toBeLessThan(8 * 1024 * 1024);

    server.resume();
    await until(() => server.got.length === i, `all ${i} messages received`, 30_000);
    server.got.forEach((m, k) => expect(m.equals(message(k)), `message ${k}`).toBe(true));
  }, 60_000);
});

import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { cleanups, until } from '@meshbus/testkit';
import { WsTransport } from '../src/ws-transport.js';

/**
 * WsTransport cuts a tick's messages as it goes and writes them together at
 * the tick's end; until then each one's end is held relative to the tick
 * (`messageEnds`), and made absolute (in the socket's `bytesWritten`) by the
 * tick's write. A destroy inside such a tick (a slow consumer cut while the
 * node routes a burst to it) counts as sent only the messages the system took
 * whole. Before 0ad8824 it compared the tick's relative ends with the bytes
 * the socket had taken before the tick, and counted messages never written
 * as sent: here 180 of the 192 events of the tick (12 messages of 15).
 */
const cleanup = cleanups();

/** A server-side WsTransport over a real `ws` connection on loopback, and the client's received byte count. */
async function transportPair(): Promise<{ t: WsTransport; received: () => number }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  cleanup.push(() => new Promise<void>((r) => wss.close(() => r())));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const port = (wss.address() as { port: number }).port;
  const server = new Promise<[WebSocket, IncomingMessage]>((r) => wss.once('connection', (ws, req) => r([ws, req])));
  const client = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  cleanup.push(() => client.terminate());
  let got = 0;
  client.on('message', (d: Buffer) => (got += d.length));
  const [ws, req] = await server;
  const noop = (): void => {};
  const t = new WsTransport(ws, req.socket as Socket, { data: noop, drain: noop, close: noop }, { protocolError: noop }, false);
  return { t, received: () => got };
}

/** `n` events (PUB frames, as a node delivers them: SPEC 10.3) of `size` payload bytes, back to back. */
function frames(n: number, size: number): Buffer {
  const f = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(size, 7) }));
  return Buffer.concat(Array.from({ length: n }, () => f));
}

it('a destroy inside the tick that cut messages counts every event of the tick as not sent (was: counted as sent against the bytes of earlier ticks)', async () => {
  const { t, received } = await transportPair();
  // Earlier ticks: 400 KiB written and taken, so the socket's byte count is well past the tick's relative ends.
  const early = frames(400, 1000);
  t.writeRange(early, 0, early.length);
  t.countEvents(400);
  await until(() => received() >= early.length && t.unsentEvents === 0, 'the earlier events to be taken', 10_000);

  // One tick: 192 events of 1,000 B cut into messages of up to 16 KiB (a frame of 1 KiB or more joins a
  // message within 16 KiB), then a destroy before the tick ends: none was written.
  const burst = frames(192, 1000);
  t.writeRange(burst, 0, burst.length);
  t.countEvents(192);
  t.destroy();
  expect(t.unsentEvents).toBe(192);
});

it('a destroy after the tick was written counts what the system took as sent', async () => {
  const { t, received } = await transportPair();
  const burst = frames(192, 1000);
  t.writeRange(burst, 0, burst.length);
  t.countEvents(192);
  await until(() => received() >= burst.length, 'the events to arrive', 10_000);
  t.destroy();
  expect(t.unsentEvents).toBe(0);
});

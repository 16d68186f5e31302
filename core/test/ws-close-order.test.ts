import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { nodeKit, until } from '@meshbus/testkit';
import { startNode, type MeshNode } from '../src/index.js';
import { WsGateway } from '../src/ws/index.js';

/**
 * The node writes a tick's WebSocket messages together at the tick's end
 * (bench/README "WebSocket: one write per tick"). When `ws` itself answers a
 * client's close frame during that tick, no data frame may follow its close
 * frame (RFC 6455 §5.5.1): the tick's messages are not sent, and their events
 * count as lost. The client here is a raw socket, so its HELLO, SUB, events
 * to itself and close frame arrive in one read.
 */

const kit = nodeKit({ start: startNode });

/** A masked client frame (RFC 6455 §5.2): FIN, `opcode`, payload. */
function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : len < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, len >> 8, len & 0xff]) : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), u64(len)]);
  const mask = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= mask[i & 3]!;
  return Buffer.concat([head, mask, body]);
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** The opcodes of the server's frames in `b` (after the HTTP response), in order. */
function serverOpcodes(b: Buffer): number[] {
  return serverFrames(b).map((f) => f.op);
}

/** The server's frames in `b` (after the HTTP response), in order: opcode and payload length. */
function serverFrames(b: Buffer): Array<{ op: number; len: number }> {
  const out: Array<{ op: number; len: number }> = [];
  let at = b.indexOf('\r\n\r\n') + 4;
  while (at + 2 <= b.length) {
    const op = b[at]! & 0x0f;
    let len = b[at + 1]! & 0x7f;
    let head = 2;
    if (len === 126) (len = b.readUInt16BE(at + 2)), (head = 4);
    else if (len === 127) (len = Number(b.readBigUInt64BE(at + 2))), (head = 10);
    if (at + head + len > b.length) break;
    out.push({ op, len });
    at += head + len;
  }
  return out;
}

/**
 * A raw WebSocket client of a gateway of `n` (a socket that keeps its half open
 * when `allowHalfOpen`), past the upgrade, its HELLO and a SUB to `me.>`; `received()`:
 * every byte the node sent it.
 */
async function subscribedRawClient(n: MeshNode, allowHalfOpen = false): Promise<{ s: Socket; received: () => Buffer }> {
  const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  kit.defer(() => g.close());
  const s: Socket = connect({ port: g.port, host: '127.0.0.1', allowHalfOpen });
  kit.defer(() => s.destroy());
  let got = Buffer.alloc(0);
  s.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
  await new Promise((r) => s.once('connect', r));
  s.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  await until(() => got.includes('\r\n\r\n'), 'the upgrade');
  expect(got.toString('latin1', 0, 12)).toBe('HTTP/1.1 101');
  const hello = encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) });
  const sub = encodeFrame({ type: FrameType.SUB, topic: 'me.>', correlation: 1, payload: encodeBody({}) });
  s.write(clientFrame(2, Buffer.concat([hello, sub])));
  await until(() => serverOpcodes(got).length >= 1, 'WELCOME and the SUB ACK');
  return { s, received: () => got };
}

it("no data frame follows the close frame ws answers a client's close with, in the tick the node cut messages to that client", async () => {
  const { s, received } = await subscribedRawClient(await kit.node());
  await new Promise((r) => setTimeout(r, 100));
  const before = serverOpcodes(received()).length;
  // Events of 10 KB to itself: the node cuts messages (16 KiB each) within the tick that reads the close frame too.
  const events = Buffer.concat(Array.from({ length: 4 }, () => encodeFrame({ type: FrameType.PUB, topic: 'me.x', payload: Buffer.alloc(10_000, 7) })));
  s.write(Buffer.concat([clientFrame(2, events), clientFrame(8, Buffer.from([0x03, 0xe8]))]));
  await until(() => serverOpcodes(received()).includes(8), "the node's close frame");
  await new Promise((r) => setTimeout(r, 200));
  const after = serverOpcodes(received()).slice(before);
  expect(after.slice(after.indexOf(8) + 1)).toEqual([]);
});

/**
 * The events of that tick count as lost, each once, and the connection is no
 * slow consumer (the review's case: 20 events of 8 KiB to itself and a close
 * frame in one write, the client's TCP half kept open). Before, the 19
 * messages cut in the tick kept ends relative to the tick and a destroy
 * counted them sent (dropped.slow +1 for 20 lost), and the one frame left in
 * the batch held the queue non-empty: the client was cut as a slow consumer
 * at the write deadline.
 */
it("the events of the tick in which ws answered a client's close frame are counted lost, each once; no slow consumer", async () => {
  const n = await kit.node({ writeDeadline: 300 });
  const { s, received } = await subscribedRawClient(n, true);
  await new Promise((r) => setTimeout(r, 100));
  const before = serverOpcodes(received()).length;
  const dropped0 = n.stats.dropped.slow;
  const events = Buffer.concat(Array.from({ length: 20 }, () => encodeFrame({ type: FrameType.PUB, topic: 'me.x', payload: Buffer.alloc(8192, 7) })));
  s.write(Buffer.concat([clientFrame(2, events), clientFrame(8, Buffer.from([0x03, 0xe8]))]));
  await until(() => serverOpcodes(received()).includes(8), "the node's close frame");
  // Past the write deadline (300 ms): a queue held non-empty would have made a slow consumer by now.
  await new Promise((r) => setTimeout(r, 1000));
  const after = serverFrames(received()).slice(before);
  const eventBytes = events.length / 20;
  // Events the node sent before its close frame (none when ws read the close frame in the tick that routed them, the usual case).
  const delivered = after.slice(0, after.findIndex((f) => f.op === 8)).reduce((a, f) => a + f.len, 0) / eventBytes;
  expect(n.stats.slowConsumers).toBe(0);
  // The client goes; the session closes and counts what it lost.
  s.destroy();
  await until(() => n.connectionCount === 0, 'the session to close');
  expect({ delivered, lost: n.stats.dropped.slow - dropped0 }).toEqual({ delivered, lost: 20 - delivered });
});

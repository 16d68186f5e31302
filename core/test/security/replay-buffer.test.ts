import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FrameType, decodeSubAck, encodeBody, encodeFrame } from '@meshbus/proto';
import { LineProcess, RawClient, requireRedisServer, startRedisServer, until, type RedisServer, cleanups } from '@meshbus/testkit';

/**
 * Hostile review (variant of issue #13.4, slow consumers pinning memory): a
 * subscription resuming with SUB `since` buffers the live events that arrive
 * while its replay is in progress. A subscriber that stops reading stalls its
 * replay (the next page waits for its queue to drain), so everything
 * published on the topic meanwhile was buffered — up to 4,096 events of any
 * size (4 GiB of 1 MiB events), counted nowhere: `meshbus_pending_bytes` and
 * /v1/connections said a few MiB while the node's RSS grew by the whole
 * stream (measured: 300 x 1 MB published, RSS +300 MB, pending 1.9 MB).
 * Live events buffered for a connection must count against its bound
 * (maxPending) and show in its `pending`; past it they are dropped and read
 * back from history once the replay is done (the history has them).
 */

const CORE_DIR = fileURLToPath(new URL('../..', import.meta.url));
/** Above a replay page (about 1 MiB): a page goes into the queue whole. */
const MAX_PENDING = 4 * 1024 * 1024;
/** Buffers V8 counts after a full GC: sockets' own buffers, the decoder, Redis client replies in flight. */
const BUFFER_MARGIN = 6 * 1024 * 1024;
const EVENT = 256 * 1024;
/** Live events published while the replay waits: 64 MiB. */
const ATTACK = 256;

/** argv: port, hex bytes to send; then holds the socket open without reading (a 4 KiB receive buffer) until killed. */
const STUCK = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', int(sys.argv[1])))
s.sendall(bytes.fromhex(sys.argv[2]))
while True:
    time.sleep(1)
`;

interface Mem {
  arrayBuffers: number;
  pending: number;
  connections: number;
}

/** A durable node in a child process answering "mem" on stdin with its buffers after a full GC. */
class NodeProcess {
  private constructor(private readonly p: LineProcess) {}

  static async start(redis: string): Promise<{ proc: NodeProcess; port: number }> {
    const opts = {
      maxPending: MAX_PENDING,
      // The stuck reader must stay connected for the whole attack (a slow reader that takes a byte now and then would).
      writeDeadline: 120_000,
      durable: { redis, prefix: 'replaybuf:', topics: [{ pattern: 'd.>', history: { size: 1000 } }] },
    };
    const code = `
      import { startNode, silentLogger } from '@meshbus/core';
      import { createInterface } from 'node:readline';
      const n = await startNode({ port: 0, logger: silentLogger, ...${JSON.stringify(opts)} });
      console.log(JSON.stringify({ port: n.port }));
      createInterface({ input: process.stdin }).on('line', () => {
        globalThis.gc(); globalThis.gc();
        let pending = 0;
        for (const s of n.connections()) pending += s.pending;
        console.log(JSON.stringify({ arrayBuffers: process.memoryUsage().arrayBuffers, pending, connections: n.connectionCount }));
      });
      process.stdin.on('end', () => process.exit(0));`;
    const p = new LineProcess(code, CORE_DIR);
    const { port } = JSON.parse(await p.next()) as { port: number };
    return { proc: new NodeProcess(p), port };
  }

  mem(): Promise<Mem> {
    return this.p.ask<Mem>('mem');
  }

  stop(): void {
    this.p.stop();
  }
}

const cleanup = cleanups();

describe('live events buffered during a replay count against the connection (hostile review)', () => {
  it('a resuming subscriber that stops reading: the node holds at most its bound for it, and reports it', async (ctx) => {
    requireRedisServer(ctx);
    // Its own Redis: the attack writes ~50 MiB through it.
    const redis: RedisServer = await startRedisServer();
    cleanup.push(() => redis.stop());
    const { proc, port } = await NodeProcess.start(redis.url);
    cleanup.push(() => proc.stop());
    const pub = await RawClient.connect(port);
    cleanup.push(() => pub.close());
    const payload = new Uint8Array(EVENT).fill(7);
    const big = encodeFrame({ type: FrameType.PUB, topic: 'd.x', payload });
    // History the replay starts with: more than the stuck reader's kernel buffers take.
    for (let i = 0; i < 24; i++) pub.socket.write(big);
    await pub.flush(20_000);
    pub.sub('d.x', 5, { since: ['', 0] });
    const ack = await pub.waitFor((g) => g.type === FrameType.ACK && g.correlation === 5 && g.payload.length > 0);
    const { epoch, offset } = decodeSubAck(ack.payload);
    expect(offset).toBe(24);
    pub.send({ type: FrameType.UNSUB, correlation: 5 });

    const resume = Buffer.concat([
      encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) }),
      encodeFrame({ type: FrameType.SUB, topic: 'd.x', correlation: 9, payload: encodeBody({ since: [epoch, 0] }) }),
    ]);
    const stuck = spawn('python3', ['-c', STUCK, String(port), resume.toString('hex')], { stdio: 'ignore' });
    cleanup.push(() => stuck.kill());
    // The replay's first page fills the reader's socket: the node holds bytes for it and waits.
    await until(async () => (await proc.mem()).pending > 0, 'the replay stalls on the stuck reader', 10_000, 50);
    const before = await proc.mem();

    // The attack: 256 live events of 256 KiB (64 MiB) on the topic while the replay waits.
    for (let i = 0; i < ATTACK; i++) {
      if (!pub.socket.write(big)) await new Promise((r) => pub.socket.once('drain', r));
    }
    await pub.flush(60_000);
    // Every publish was stored and delivered (the publisher's PINGs come after its PUBs' routing; the
    // durable delivery follows Redis's answer): wait for the history to hold them all.
    pub.sub('d.x', 6, { since: ['', 0] });
    await until(() => pub.got.some((g) => g.type === FrameType.ACK && g.correlation === 6 && g.payload.length > 0 && decodeSubAck(g.payload).offset === 24 + ATTACK), 'all stored', 30_000);
    const after = await proc.mem();
    const growth = after.arrayBuffers - before.arrayBuffers;
    console.log(
      `[replay buffer] arrayBuffers ${(before.arrayBuffers / 2 ** 20).toFixed(1)} -> ${(after.arrayBuffers / 2 ** 20).toFixed(1)} MiB; ` +
        `pending ${(before.pending / 2 ** 20).toFixed(2)} -> ${(after.pending / 2 ** 20).toFixed(2)} MiB`,
    );
    // The stuck reader is still connected (its replay waits), with the publisher.
    expect(after.connections).toBe(2);
    // What the node keeps for it is bounded by its limit (queue and buffered live events, each
    // within maxPending), not by what was published...
    expect(growth).toBeLessThanOrEqual(2 * MAX_PENDING + BUFFER_MARGIN);
    // ...and what it keeps is what it reports.
    expect(after.pending).toBeLessThanOrEqual(2 * MAX_PENDING);
  }, 120_000);

  it('the events dropped from the buffer come from history: a reader that stops, then reads again, gets every offset once, in order', async (ctx) => {
    requireRedisServer(ctx);
    const redis: RedisServer = await startRedisServer();
    cleanup.push(() => redis.stop());
    const { proc, port } = await NodeProcess.start(redis.url);
    cleanup.push(() => proc.stop());
    const pub = await RawClient.connect(port);
    cleanup.push(() => pub.close());
    const big = encodeFrame({ type: FrameType.PUB, topic: 'd.x', payload: new Uint8Array(EVENT) });
    // 16 MiB of history: more than loopback's kernel buffers absorb, so the replay waits for the reader.
    const HISTORY = 64;
    for (let i = 0; i < HISTORY; i++) pub.socket.write(big);
    await pub.flush(20_000);
    pub.sub('d.x', 5, { since: ['', 0] });
    const ack = await pub.waitFor((g) => g.type === FrameType.ACK && g.correlation === 5 && g.payload.length > 0);
    const { epoch } = decodeSubAck(ack.payload);
    pub.send({ type: FrameType.UNSUB, correlation: 5 });

    const reader = await RawClient.connect(port);
    cleanup.push(() => reader.close());
    await reader.flush();
    reader.pauseReading();
    reader.sub('d.x', 9, { since: [epoch, 0] });
    await until(async () => (await proc.mem()).pending > 0, 'the replay waits for the reader', 10_000, 50);
    for (let i = 0; i < ATTACK; i++) {
      if (!pub.socket.write(big)) await new Promise((r) => pub.socket.once('drain', r));
    }
    await pub.flush(60_000);
    reader.resumeReading();
    const total = HISTORY + ATTACK;
    await until(() => reader.events('d.x').length >= total, `all ${total} events`, 60_000);
    await new Promise((r) => setTimeout(r, 300));
    const offsets = reader.got
      .filter((g) => g.type === FrameType.PUB && g.sid === 9)
      .map((g) => g.offset);
    expect(offsets).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  }, 120_000);
});

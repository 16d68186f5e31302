import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { LineProcess, RawClient, until } from '@meshbus/testkit';

/**
 * Issue #13.4: what a connection keeps alive must be what its limits count.
 * The node runs in its own process so its RSS is its own; this process is
 * the attacker: four subscribers that never read and a publisher whose every
 * 64 KiB chunk holds one small event (the rest a publish nobody receives).
 * A delivered event is a view of the chunk it arrived in; while the node
 * held such views for a non-reading socket, each 90-byte event pinned 64 KiB.
 */

const CORE_DIR = fileURLToPath(new URL('../..', import.meta.url));
const MAX_PENDING = 1024 * 1024;
const SUBSCRIBERS = 4;
/**
 * RSS the node gains under any heavy input whatever it retains: V8's young
 * generation grows to its maximum semi-spaces, malloc keeps freed input
 * chunks' pages (measured: ~30-40 MiB after 500 MiB of input). Fixed, not
 * proportional to what is sent; the old code's pinning added ~400 MiB.
 */
const MARGIN = 96 * 1024 * 1024;
/** Buffers V8 counts: exact, so only a small fixed margin (sockets' own buffers, decoder). */
const BUFFER_MARGIN = 4 * 1024 * 1024;

interface Mem {
  rss: number;
  arrayBuffers: number;
  pending: number;
  dropped: number;
  subscriptions: number;
  slowConsumers: number;
  connections: number;
}

type Kind = 'tcp' | 'ws';

/**
 * argv: port, count, hex bytes to send on each connection, 'tcp' or 'ws';
 * then holds the sockets open without reading until killed. Over 'ws' each
 * socket first upgrades (reading only the 101 answer) and sends the bytes as
 * one masked binary message (mask 0: the bytes go as they are).
 */
const STUCK_SUBSCRIBERS = `
import socket, struct, sys, time
port, n, hello, kind = int(sys.argv[1]), int(sys.argv[2]), bytes.fromhex(sys.argv[3]), sys.argv[4]
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(('127.0.0.1', port))
    if kind == 'ws':
        s.sendall(b'GET / HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n'
                  b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')
        head = b''
        while b'\\r\\n\\r\\n' not in head:
            head += s.recv(1)
        assert b' 101 ' in head.split(b'\\r\\n')[0], head
        size = len(hello)
        lead = bytes([0x82, 0x80 | size]) if size < 126 else bytes([0x82, 0x80 | 126]) + struct.pack('>H', size)
        s.sendall(lead + b'\\0\\0\\0\\0' + hello)
    else:
        s.sendall(hello)
    socks.append(s)
while True:
    time.sleep(1)
`;

/** A node in a child process answering "mem" on stdin with its memory after a full GC, "pending" with its queued bytes. */
class NodeProcess {
  private constructor(private readonly p: LineProcess) {}

  /** A node with `opts`; `port` is its TCP port, `wsPort` its WebSocket gateway's. */
  static async start(opts: Record<string, unknown>): Promise<{ proc: NodeProcess; port: number; wsPort: number }> {
    const code = `
      import { startNode, silentLogger } from '@meshbus/core';
      import { WsGateway } from '@meshbus/core/ws';
      import { createInterface } from 'node:readline';
      const n = await startNode({ port: 0, logger: silentLogger, ...${JSON.stringify(opts)} });
      const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
      console.log(JSON.stringify({ port: n.port, wsPort: g.port }));
      createInterface({ input: process.stdin }).on('line', (cmd) => {
        let pending = 0;
        for (const s of n.connections()) pending += s.pending;
        if (cmd === 'pending') return console.log(JSON.stringify({ pending }));
        globalThis.gc(); globalThis.gc();
        const m = process.memoryUsage();
        let subscriptions = 0;
        for (const s of n.connections()) subscriptions += s.subscriptionCount;
        console.log(JSON.stringify({ rss: m.rss, arrayBuffers: m.arrayBuffers, pending, dropped: n.stats.dropped.slow, subscriptions,
          slowConsumers: n.stats.slowConsumers, connections: n.connectionCount }));
      });
      process.stdin.on('end', () => process.exit(0));`;
    const p = new LineProcess(code, CORE_DIR);
    const { port, wsPort } = JSON.parse(await p.next(10_000)) as { port: number; wsPort: number };
    return { proc: new NodeProcess(p), port, wsPort };
  }

  /** Memory after a full GC, and the node's queue figures. */
  mem(): Promise<Mem> {
    return this.p.ask<Mem>('mem');
  }

  /** Bytes queued in the node for all connections (no GC). */
  async pending(): Promise<number> {
    return (await this.p.ask<{ pending: number }>('pending')).pending;
  }

  stop(): void {
    this.p.stop();
  }
}

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

const KINDS: Kind[] = ['tcp', 'ws'];

describe.each(KINDS)('%s: slow consumers pin no input chunks (issue #13.4)', (kind) => {
  it('four never-reading subscribers fed one small event per 64 KiB chunk: node RSS stays within what its limits count', async () => {
    const { proc, port, wsPort } = await NodeProcess.start({ maxPending: MAX_PENDING });
    cleanup.push(() => proc.stop());
    // The subscribers: sockets with a small fixed receive buffer (SO_RCVBUF turns off the kernel's
    // autotuning, which on loopback would otherwise absorb megabytes) that say HELLO, SUB and never read.
    const subscribe = Buffer.concat([
      encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) }),
      encodeFrame({ type: FrameType.SUB, topic: 'feed', correlation: 1, payload: encodeBody({ slow: 'drop' }) }),
    ]);
    const attacker = spawn('python3', ['-c', STUCK_SUBSCRIBERS, String(kind === 'ws' ? wsPort : port), String(SUBSCRIBERS), subscribe.toString('hex'), kind], { stdio: 'pipe' });
    cleanup.push(() => attacker.kill());
    attacker.stderr.resume();
    attacker.stdout.resume();
    await until(async () => (await proc.mem()).subscriptions === SUBSCRIBERS, 'every subscription', 10_000, 20);
    const pub = await RawClient.connect(port);
    cleanup.push(() => pub.close());
    await pub.flush();
    const small = encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: new Uint8Array(16) });

    // Phase 1, cheap: small events packed 100 to a write until the kernel buffers toward the
    // subscribers are full and the node starts holding bytes (those are copies: one batch per write).
    const packed = Buffer.concat(Array.from({ length: 100 }, () => small));
    let prefill = 0;
    while ((await proc.pending()) === 0) {
      if (++prefill > 50_000) throw new Error('the node never held bytes for the stuck subscribers');
      pub.socket.write(packed);
    }
    const before = await proc.mem();

    // Phase 2, the attack: 64 KiB units of one small event, then a publish to a topic nobody hears.
    const padHead = encodeFrame({ type: FrameType.PUB, topic: 'pad', payload: new Uint8Array(0) }).length;
    const pad = encodeFrame({ type: FrameType.PUB, topic: 'pad', payload: new Uint8Array(65536 - small.length - padHead) });
    const unit = Buffer.concat([small, pad]);
    expect(unit.length).toBe(65536);
    const units = 8000; // ~500 MiB; the old node held ~6,000 of these events per socket as views (its 512 KiB high-water mark), each pinning its 64 KiB unit
    for (let i = 0; i < units; i++) {
      if (!pub.socket.write(unit)) await new Promise((r) => pub.socket.once('drain', r));
    }
    await pub.flush(30_000);
    const after = await proc.mem();
    console.log(`[#13.4 ${kind}] prefill: ${prefill} writes of ${packed.length} bytes`);

    const growth = after.rss - before.rss;
    const bound = SUBSCRIBERS * MAX_PENDING + MARGIN;
    console.log(
      `[#13.4 ${kind}] node RSS growth ${(growth / 2 ** 20).toFixed(1)} MiB (bound ${(bound / 2 ** 20).toFixed(1)} MiB); ` +
        `arrayBuffers ${(before.arrayBuffers / 2 ** 20).toFixed(1)} -> ${(after.arrayBuffers / 2 ** 20).toFixed(1)} MiB; ` +
        `pending ${(after.pending / 2 ** 20).toFixed(2)} MiB; dropped ${after.dropped}`,
    );
    // The attack reached the node: it holds over half its high-water mark per stuck subscriber.
    expect(after.pending).toBeGreaterThan((SUBSCRIBERS * MAX_PENDING) / 4);
    expect(after.pending).toBeLessThanOrEqual(SUBSCRIBERS * MAX_PENDING + 64 * 1024);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThanOrEqual(SUBSCRIBERS * MAX_PENDING + BUFFER_MARGIN);
    expect(growth).toBeLessThanOrEqual(bound);
    expect(after.subscriptions).toBe(SUBSCRIBERS);
  });
});

describe.each(KINDS)('%s: a never-reading slow consumer is disconnected and its memory released', (kind) => {
  it("four stuck 'disconnect' subscribers flooded past maxPending: each is closed as a slow consumer, the node's buffers return to what they were", async () => {
    const { proc, port, wsPort } = await NodeProcess.start({ maxPending: MAX_PENDING, drainTimeout: 300 });
    cleanup.push(() => proc.stop());
    const subscribe = Buffer.concat([
      encodeFrame({ type: FrameType.HELLO, payload: encodeBody({ v: [1, 1] }) }),
      encodeFrame({ type: FrameType.SUB, topic: 'feed', correlation: 1 }),
    ]);
    const attacker = spawn('python3', ['-c', STUCK_SUBSCRIBERS, String(kind === 'ws' ? wsPort : port), String(SUBSCRIBERS), subscribe.toString('hex'), kind], { stdio: 'pipe' });
    cleanup.push(() => attacker.kill());
    attacker.stderr.resume();
    attacker.stdout.resume();
    await until(async () => (await proc.mem()).subscriptions === SUBSCRIBERS);
    const pub = await RawClient.connect(port);
    cleanup.push(() => pub.close());
    await pub.flush();
    const before = await proc.mem();
    // 64 MiB of 64 KiB events: far past what the kernel buffers and maxPending hold for each subscriber.
    const big = encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: new Uint8Array(65536) });
    for (let i = 0; i < 1024; i++) {
      if (!pub.socket.write(big)) await new Promise((r) => pub.socket.once('drain', r));
    }
    await pub.flush(30_000);
    await until(async () => {
      const m = await proc.mem();
      return m.slowConsumers === SUBSCRIBERS && m.connections === 1;
    }, 20_000);
    const after = await proc.mem();
    console.log(`[slow ${kind}] arrayBuffers ${(before.arrayBuffers / 2 ** 20).toFixed(1)} -> ${(after.arrayBuffers / 2 ** 20).toFixed(1)} MiB; pending ${after.pending}`);
    expect(after.pending).toBe(0);
    expect(after.subscriptions).toBe(0);
    // Nothing of what was queued for them stays reachable once they are gone.
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThanOrEqual(BUFFER_MARGIN);
  });
});

import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { RawClient, RawWs, until } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { startHttp } from '../../src/http/index.js';
import { unfinishedPub } from './input-budget-node.js';

/**
 * The input budget (SPEC 9.5) lets a sender that keeps sending through while
 * idle half-frames fill it: the holders that send nothing are the ones
 * closed (MB_ERR_INPUT_BUDGET), over TCP, WebSocket and HTTP alike, and a
 * 1 MB event published meanwhile is delivered. Real sockets on loopback.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const MiB = 1024 * 1024;

async function stack(): Promise<{ n: MeshNode; wsPort: number; httpPort: number }> {
  // 8 MiB: the least a node with 1 MiB payloads takes is twice its largest frame (~4.2 MB).
  const n = await startNode({ port: 0, logger: silentLogger, inputBudget: 8 * MiB, inputStall: 300 });
  cleanups.push(() => n.close());
  const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  cleanups.push(() => g.close());
  const h = await startHttp(n, { port: 0, host: '127.0.0.1' });
  cleanups.push(() => h.close());
  return { n, wsPort: g.port, httpPort: h.port };
}

type Holder = { closed: () => boolean; typedError: () => boolean };

/** `count` inputs of `kind`, each holding 900 KB of a frame, message or body it never finishes. */
async function holders(kind: 'tcp' | 'ws' | 'http', count: number, ports: { port: number; wsPort: number; httpPort: number }): Promise<Holder[]> {
  const out: Holder[] = [];
  for (let i = 0; i < count; i++) {
    if (kind === 'tcp') {
      const c = await RawClient.connect(ports.port);
      cleanups.push(() => c.close());
      c.sendBytes(unfinishedPub('hold.x', 1_000_000, 900_000));
      out.push({ closed: () => c.closed, typedError: () => c.got.some((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_INPUT_BUDGET') });
    } else if (kind === 'ws') {
      const c = await RawWs.connect(`ws://127.0.0.1:${ports.wsPort}/`);
      cleanups.push(() => c.close());
      // Fragments of one binary message, never the last.
      for (let k = 0; k < 9; k++) c.ws.send(Buffer.alloc(100_000, 7), { binary: true, fin: false });
      out.push({ closed: () => c.closed, typedError: () => c.closeCode === 1013 && c.got.some((g) => g.type === FrameType.ERROR && g.error === 'MB_ERR_INPUT_BUDGET') });
    } else {
      const s = net.connect(ports.httpPort, '127.0.0.1');
      s.on('error', () => {});
      let text = '';
      let closed = false;
      s.on('data', (c: Buffer) => (text += c.toString('latin1')));
      s.on('close', () => (closed = true));
      await new Promise<void>((r) => s.once('connect', () => r()));
      cleanups.push(() => void s.destroy());
      s.write(`POST /v1/publish/hold.x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n`);
      s.write(Buffer.alloc(900_000, 7));
      out.push({ closed: () => closed, typedError: () => /^HTTP\/1\.1 503/.test(text) && text.includes('MB_ERR_INPUT_BUDGET') });
    }
  }
  return out;
}

/** A subscriber on `big.>` and a publisher of four 1 MB events on `n`; resolves once the four arrived, the publisher's connection still open. */
async function fourBigEvents(n: MeshNode): Promise<void> {
  const sub = await RawClient.connect(n.port);
  const pub = await RawClient.connect(n.port);
  cleanups.push(() => [sub, pub].forEach((c) => c.close()));
  sub.sub('big.>', 1);
  await sub.flush();
  for (let i = 0; i < 4; i++) pub.pub('big.x', Buffer.alloc(1_000_000, i));
  await until(() => sub.got.filter((g) => g.type === FrameType.PUB && g.topic === 'big.x' && g.payload.length === 1_000_000).length === 4, 'four 1 MB events', 15_000);
  expect(pub.closed).toBe(false);
}

it.each(['tcp', 'ws', 'http'] as const)('idle %s holders fill the budget: a 1 MB event still gets through, the holders are closed with MB_ERR_INPUT_BUDGET', async (kind) => {
  const { n, wsPort, httpPort } = await stack();
  const held = await holders(kind, 10, { port: n.port, wsPort, httpPort });
  const b = n.inputBudget;
  await until(() => b.used >= b.limit, 'the budget full');
  await fourBigEvents(n);

  // Closed: the holders that sat on the budget while the publisher waited, each told why.
  await until(() => held.filter((h) => h.closed()).length === b.evictions, 'the holders closed');
  console.log(`${kind}: ${b.evictions} of 10 holders closed, ${b.waits} waits, held ${b.used} of ${b.limit}`);
  expect(b.evictions).toBeGreaterThan(0);
  for (const h of held.filter((h) => h.closed())) expect(h.typedError()).toBe(true);
  expect(b.used).toBeLessThanOrEqual(b.limit);
});

it('a publisher sending frames split across reads keeps its connection and is charged nothing once they are whole', async () => {
  const { n } = await stack();
  const sub = await RawClient.connect(n.port);
  const pub = await RawClient.connect(n.port);
  cleanups.push(() => [sub, pub].forEach((c) => c.close()));
  sub.sub('big.>', 1);
  await sub.flush();
  for (let i = 0; i < 20; i++) pub.pub('big.x', Buffer.alloc(900_000, i));
  await until(() => sub.got.filter((g) => g.type === FrameType.PUB).length === 20, '20 events of 900 KB', 15_000);
  expect(n.inputBudget.used).toBe(0);
  expect(n.inputBudget.evictions).toBe(0);
  expect(n.inputBudget.peak).toBeGreaterThan(0);
});

it('holders that dribble a few bytes of their frame every 100 ms are closed too; the publisher gets through', async () => {
  const { n } = await stack();
  const held: RawClient[] = [];
  for (let i = 0; i < 10; i++) {
    const c = await RawClient.connect(n.port);
    cleanups.push(() => c.close());
    held.push(c);
  }
  const frame = unfinishedPub('hold.x', 1_000_000, 1_000_000 + 64);
  let at = 900_000;
  for (const c of held) c.sendBytes(frame.subarray(0, at));
  const dribble = setInterval(() => {
    // 50 bytes every 100 ms: the frame would end after ~3 minutes.
    for (const c of held) if (!c.closed) c.sendBytes(frame.subarray(at, at + 50));
    at += 50;
  }, 100);
  cleanups.push(() => clearInterval(dribble));
  const b = n.inputBudget;
  await until(() => b.used >= b.limit, 'the budget full');
  await fourBigEvents(n);
  await until(() => held.filter((c) => c.closed).length === b.evictions, 'the holders closed');
  expect(b.evictions).toBeGreaterThan(0);
  for (const c of held.filter((c) => c.closed)) expect(c.got.find((g) => g.type === FrameType.ERROR)?.error).toBe('MB_ERR_INPUT_BUDGET');
});

import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { RawClient, RawWs, sleep } from '@meshbus/testkit';
import { budgetNode, unfinishedPub, unsent, type BudgetNode } from './input-budget-node.js';

/**
 * The node-wide input budget (SPEC 9.5, core/src/input-budget.ts): bytes of
 * frames, WebSocket messages and HTTP bodies that have not arrived whole are
 * held within the budget, every connection together, whatever path they came
 * in by. Before, each connection held up to its frame limit (about 2 ×
 * maxPayload) until liveness closed it, and nothing bounded the sum: 200
 * connections sending 1 MB of a frame they never finish took a node's RSS
 * from 58 to 274 MB. Real node processes (with --expose-gc: what they hold
 * after a full collection) and sockets on loopback.
 */

const MiB = 1024 * 1024;
const BUDGET = 16 * MiB;
/**
 * What the budget may be passed by (SPEC 9.5 rule 1): one socket read (64 KiB) per input it pauses, and one frame,
 * message or body more (every holder waiting: the oldest reads on; these hold 900 KB of 1 MB each); and what the
 * node allocates besides.
 */
const perInput = 64 * 1024;
const oneFrame = 1024 * 1024;
const besides = 8 * MiB;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanups.splice(0).reverse()) f();
});

async function node(): Promise<BudgetNode> {
  // No stall closes anyone during the measure: the bound holds for as long as the holders keep their bytes.
  const n = await budgetNode({ inputBudget: BUDGET, inputStall: 600_000, maxConnectionsPerIp: 10_000 });
  cleanups.push(() => n.kill());
  return n;
}

/** Node memory once what the inputs sent has been read or left in the kernel's buffers: two samples 300 ms apart within 1 MiB, nothing left unsent by the clients. */
async function settled(n: BudgetNode, sockets: net.Socket[]): Promise<NodeJS.MemoryUsage> {
  let prev = await n.memory();
  for (let i = 0; i < 60; i++) {
    await sleep(300);
    const m = await n.memory();
    if (unsent(sockets) === 0 && Math.abs(m.arrayBuffers - prev.arrayBuffers) < MiB) return m;
    prev = m;
  }
  return prev;
}

async function expectHeldWithinBudget(n: BudgetNode, inputs: number, base: NodeJS.MemoryUsage, sockets: net.Socket[], sent: number): Promise<void> {
  const m = await settled(n, sockets);
  const grown = m.arrayBuffers - base.arrayBuffers;
  console.log(`${inputs} inputs sent ${(sent / MiB).toFixed(1)} MiB of unfinished input: node arrayBuffers +${(grown / MiB).toFixed(1)} MiB, rss ${(base.rss / MiB).toFixed(0)} -> ${(m.rss / MiB).toFixed(0)} MiB`);
  expect(grown).toBeLessThan(BUDGET + inputs * perInput + oneFrame + besides);
  const b = await n.budget();
  expect(b?.used).toBeLessThanOrEqual(BUDGET + inputs * perInput + oneFrame);
  expect(b?.waits).toBeGreaterThan(0);
}

it('TCP clients each holding 900 KB of an unfinished frame: the node holds them within its input budget', async () => {
  const n = await node();
  const clients: RawClient[] = [];
  for (let i = 0; i < 100; i++) clients.push(await RawClient.connect(n.port));
  cleanups.push(() => clients.forEach((c) => c.close()));
  const base = await n.memory();
  const part = unfinishedPub('hold.x', 1_000_000, 900_000);
  for (const c of clients) c.sendBytes(part);
  await expectHeldWithinBudget(n, clients.length, base, clients.map((c) => c.socket), clients.length * part.length);
});

it('WebSocket clients each holding 900 KB of an unfinished message (fragments): within the input budget', async () => {
  const n = await node();
  const clients: RawWs[] = [];
  for (let i = 0; i < 60; i++) clients.push(await RawWs.connect(`ws://127.0.0.1:${n.wsPort}/`));
  cleanups.push(() => clients.forEach((c) => c.close()));
  const base = await n.memory();
  // Fragments of one binary message, never the last: ws keeps them until the message ends.
  for (const c of clients) for (let k = 0; k < 9; k++) c.ws.send(Buffer.alloc(100_000, 7), { binary: true, fin: false });
  const sockets = clients.map((c) => (c.ws as unknown as { _socket: net.Socket })._socket);
  await expectHeldWithinBudget(n, clients.length, base, sockets, clients.length * 900_000);
});

it('HTTP requests each sending 900 KB of a 1 MB body and not the rest: within the input budget', async () => {
  const n = await node();
  const sockets: net.Socket[] = [];
  cleanups.push(() => sockets.forEach((s) => s.destroy()));
  for (let i = 0; i < 60; i++) {
    const s = net.connect(n.httpPort, '127.0.0.1');
    s.on('error', () => {});
    await new Promise<void>((r) => s.once('connect', () => r()));
    sockets.push(s);
  }
  const base = await n.memory();
  const body = Buffer.alloc(900_000, 7);
  for (const s of sockets) {
    s.write(`POST /v1/publish/hold.x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n`);
    s.write(body);
  }
  await expectHeldWithinBudget(n, sockets.length, base, sockets, sockets.length * body.length);
});

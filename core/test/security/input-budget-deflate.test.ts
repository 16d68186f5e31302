import type net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { RawWs, sleep } from '@meshbus/testkit';
import { budgetNode, type BudgetNode } from './input-budget-node.js';

/**
 * The input budget (SPEC 9.5) with WebSocket permessage-deflate: ws inflates
 * a compressed fragment asynchronously (zlib), after the socket read that
 * brought it, and keeps the inflated fragments until the message ends. What
 * was charged was read right after each socket read: the fragments inflated
 * later were never charged. 60 clients each sending 900 KB of zeros (about
 * 1 KB on the wire) in fragments of an unfinished compressed message made a
 * node with a 16 MiB budget hold 54 MB with the budget's counter near 0 and
 * no one paused; charged, still 48.9 MiB (pausing the socket did not stop ws
 * inflating the frames of a read already taken). Real node process, real
 * sockets.
 */

const MiB = 1024 * 1024;
const BUDGET = 16 * MiB;
/** Past the budget per paused input: one socket read, and (compressed) the one frame it inflated before it was paused (SPEC 9.5). */
const FRAGMENT = 100_000;
const perInput = 64 * 1024 + FRAGMENT;
const besides = 8 * MiB;

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanups.splice(0).reverse()) f();
});

async function settled(n: BudgetNode, sockets: net.Socket[]): Promise<NodeJS.MemoryUsage> {
  let prev = await n.memory();
  for (let i = 0; i < 60; i++) {
    await sleep(300);
    const m = await n.memory();
    if (sockets.every((s) => s.writableLength === 0) && Math.abs(m.arrayBuffers - prev.arrayBuffers) < MiB) return m;
    prev = m;
  }
  return prev;
}

it('WebSocket clients each holding 900 KB of an unfinished compressed message: within the input budget', async () => {
  const n = await budgetNode({ inputBudget: BUDGET, inputStall: 600_000, maxConnectionsPerIp: 10_000 }, { perMessageDeflate: true });
  cleanups.push(() => n.kill());
  const clients: RawWs[] = [];
  for (let i = 0; i < 60; i++) clients.push(await RawWs.connect(`ws://127.0.0.1:${n.wsPort}/`, { ws: { perMessageDeflate: true } }));
  cleanups.push(() => clients.forEach((c) => c.close()));
  const base = await n.memory();
  // Zeros compress about 1000:1: each client sends about 1 KB, the node inflates 900 KB and keeps it until the message ends.
  for (const c of clients) for (let k = 0; k < 9; k++) c.ws.send(Buffer.alloc(FRAGMENT), { binary: true, fin: false, compress: true });
  const sockets = clients.map((c) => (c.ws as unknown as { _socket: net.Socket })._socket);
  const m = await settled(n, sockets);
  const grown = m.arrayBuffers - base.arrayBuffers;
  const b = await n.budget();
  console.log(`60 compressed unfinished messages of 900 KB: node arrayBuffers +${(grown / MiB).toFixed(1)} MiB, budget used ${b?.used} peak ${b?.peak} waits ${b?.waits}`);
  expect(grown).toBeLessThan(BUDGET + clients.length * perInput + besides);
  expect(b?.used).toBeLessThanOrEqual(BUDGET + clients.length * perInput);
  expect(b?.waits).toBeGreaterThan(0);
});

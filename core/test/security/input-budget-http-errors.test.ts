import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { sleep } from '@meshbus/testkit';
import { budgetNode, type BudgetNode } from './input-budget-node.js';

/**
 * HTTP bodies the API refuses before reading them whole (SPEC 9.5): a
 * `413` past `bodyLimit`, by Content-Length or counted in a chunked body.
 * The reply went out with the body's holder neither ended nor closed (node
 * drops the rest of the body unread), so what it had been charged stayed
 * charged for ever: 65 KB for a body refused by its Content-Length, 160 KB
 * for a chunked one. A few dozen filled a 4 MiB budget for good: the next
 * bodies were paused and left unanswered (this test timed out at 30 s on
 * 87c23a8), and any client's unfinished frame would be paused and then
 * closed with MB_ERR_INPUT_BUDGET. Real node process, raw sockets.
 */

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanups.splice(0).reverse()) f();
});

/** Sends `head` and `body` on a new connection; resolves with the status line once the response came (the socket then closed). */
async function request(n: BudgetNode, head: string, body: Buffer): Promise<string> {
  const s = net.connect(n.httpPort, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((r) => s.once('connect', () => r()));
  let out = '';
  s.on('data', (d: Buffer) => (out += d.toString('latin1')));
  s.write(head);
  s.write(body);
  for (let i = 0; i < 250 && !out.includes('\r\n\r\n'); i++) await sleep(20);
  s.destroy();
  return out.split('\r\n')[0] ?? '';
}

async function metric(n: BudgetNode, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${n.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

it('bodies refused with 413 before they were read whole leave nothing charged to the input budget', async () => {
  const n = await budgetNode({ inputBudget: 4 * 1024 * 1024, maxPayload: 100_000, maxConnectionsPerIp: 10_000 });
  cleanups.push(() => n.kill());
  const big = Buffer.alloc(300_000, 7);
  const byLength = `POST /v1/publish/x.y HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${big.length}\r\n\r\n`;
  const chunkedHead = `POST /v1/publish/x.y HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n`;
  const chunked = Buffer.concat([Buffer.from(`${big.length.toString(16)}\r\n`), big, Buffer.from('\r\n0\r\n\r\n')]);
  const statuses = new Set<string>();
  for (let round = 0; round < 10; round++) {
    const all = [];
    for (let i = 0; i < 5; i++) all.push(request(n, byLength, big), request(n, chunkedHead, chunked));
    for (const s of await Promise.all(all)) statuses.add(s);
  }
  expect([...statuses]).toEqual(['HTTP/1.1 413 Payload Too Large']);
  await sleep(200);
  const b = await n.budget();
  console.log(`100 bodies refused with 413: budget used ${b?.used} (limit ${b?.limit}), peak ${b?.peak}`);
  expect(b?.peak).toBeGreaterThan(0);
  expect(b?.used).toBe(0);
  expect(await metric(n, 'meshbus_input_held_bytes')).toBe(0);
});

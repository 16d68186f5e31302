import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { RawClient, RawWs, sleep } from '@meshbus/testkit';
import { budgetNode, unfinishedPub } from './input-budget-node.js';

/**
 * The input budget's counter (SPEC 9.5) after 1,000 inputs that end while
 * they hold bytes, most of them while the budget is full: TCP clients
 * destroyed mid-frame, TCP clients sending a frame past the limit (skipped)
 * and destroyed, WebSocket clients (half with permessage-deflate) closed or
 * terminated mid-message, HTTP requests aborted mid-body. Nothing stays
 * charged, held or waiting (it held on 87c23a8 too: a check, not a fault).
 */

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanups.splice(0).reverse()) f();
});

it('1,000 inputs ended while holding bytes leave the budget at 0', async () => {
  const n = await budgetNode({ inputBudget: 4_400_000, inputStall: 300, maxConnectionsPerIp: 10_000 }, { perMessageDeflate: true });
  cleanups.push(() => n.kill());
  for (let round = 0; round < 10; round++) {
    const all: Promise<void>[] = [];
    for (let i = 0; i < 25; i++) {
      all.push((async () => {
        const c = await RawClient.connect(n.port);
        c.sendBytes(unfinishedPub('d.x', 300_000, 100_000 + i * 1000));
        await sleep(250);
        c.socket.destroy();
      })());
      all.push((async () => {
        const c = await RawWs.connect(`ws://127.0.0.1:${n.wsPort}/`, { ws: { perMessageDeflate: i % 2 === 0 } });
        for (let k = 0; k < 3; k++) c.ws.send(Buffer.alloc(50_000, k), { binary: true, fin: false, compress: i % 2 === 0 });
        await sleep(250);
        if (i % 3 === 0) c.ws.terminate(); else c.close();
      })());
      all.push((async () => {
        const s = net.connect(n.httpPort, '127.0.0.1');
        s.on('error', () => {});
        await new Promise<void>((r) => s.once('connect', () => r()));
        s.write(`POST /v1/publish/d.x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 500000\r\n\r\n`);
        s.write(Buffer.alloc(100_000 + i * 1000));
        await sleep(250);
        s.destroy();
      })());
      all.push((async () => {
        // a frame past the limit: skipped
        const c = await RawClient.connect(n.port);
        c.sendBytes(unfinishedPub('d.x', 3_000_000, 200_000));
        await sleep(250);
        c.socket.destroy();
      })());
    }
    await Promise.all(all);
  }
  await sleep(1000);
  const b = await n.budget();
  console.log(`after 1,000 inputs ended mid-frame: ${JSON.stringify(b)}`);
  expect(b?.used).toBe(0);
  expect(b?.holding).toBe(0);
  expect(b?.waiting).toBe(0);
  expect(b?.waits).toBeGreaterThan(0);
});

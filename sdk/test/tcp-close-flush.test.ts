import { createServer, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { cleanups, until } from '@meshbus/testkit';
import { TcpTransport } from '../src/index.js';
import { parseServer } from '../src/servers.js';

/**
 * A closing TCP connection whose other end reads slowly: a draining node
 * reads what a client sent before its GOODBYE until its own deadline (SPEC
 * 10.7), under its input budget (paused reads). Before, the SDK cut the
 * socket 2 s after close() whatever it still held, so what the node had not
 * read by then was lost without a word. Now it is cut only after 2 s in
 * which nothing more was taken (or 30 s in all). A raw server stands in for
 * the node: it reads nothing for 1 s, then 4 MiB every 0.5 s.
 */
const cleanup = cleanups();
const TOTAL = 32 * 1024 * 1024;

it('close() lets a slow reader take everything it was sent, as long as it keeps reading', async () => {
  let received = 0;
  let ended = false;
  const server = createServer((s: Socket) => {
    s.pause();
    let taken = 0;
    s.on('data', (d: Buffer) => {
      received += d.length;
      taken += d.length;
      if (taken < 4 * 1024 * 1024) return;
      taken = 0;
      s.pause();
      setTimeout(() => s.resume(), 500);
    });
    s.on('end', () => {
      ended = true;
      s.end();
    });
    s.on('error', () => {});
    setTimeout(() => s.resume(), 1000);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise<void>((r) => server.close(() => r())));
  const t = new TcpTransport();
  await t.connect(parseServer(`127.0.0.1:${(server.address() as { port: number }).port}`), { timeout: 2000 });
  const chunk = new Uint8Array(1024 * 1024).fill(7);
  for (let sent = 0; sent < TOTAL; sent += chunk.length) t.send([chunk]);
  t.close();
  await until(() => ended, `every byte read (${received} of ${TOTAL})`, 20_000);
  expect(received).toBe(TOTAL);
}, 30_000);

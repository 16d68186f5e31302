import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { afterEach, expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { RawClient, RawWs, until } from '@meshbus/testkit';

/**
 * A connection that has closed holds no memory. Clients on topics of their
 * own (a user's, a device's: `soak.c<i>`) that subscribe, publish, get their
 * event and leave, half with GOODBYE and half by reset, over TCP and
 * WebSocket: the node's heap after a full GC stays where it was.
 *
 * Before (found by the 12-wave soak, `npm run test:reliability`), two
 * things held every closed connection (its session, socket, decoder and
 * queues, ~3.5 KB of heap): the route cache, whose entry for a topic
 * published once kept its receivers until the cache held 16,384 topics, and
 * the close deadline, a timer armed at every close and never cleared, which
 * kept the connection for drainTimeout (5 s) after it was gone. The node's
 * heap grew by ~3.5 MB per 1,000 such clients, linearly.
 */

const CORE_DIR = fileURLToPath(new URL('../..', import.meta.url));

/** A node in a child process (HTTP off, WebSocket gateway on) answering each line on stdin with its heap in use after a full GC. */
async function nodeProcess(): Promise<{ child: ChildProcessWithoutNullStreams; port: number; wsPort: number; heapUsed(): Promise<number>; connections(): Promise<number> }> {
  const code = `
    import { startNode, silentLogger } from '@meshbus/core';
    import { WsGateway } from '@meshbus/core/ws';
    import { createInterface } from 'node:readline';
    const n = await startNode({ port: 0, logger: silentLogger, maxConnectionsPerIp: 100000 });
    const g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    console.log(JSON.stringify({ port: n.port, wsPort: g.port }));
    createInterface({ input: process.stdin }).on('line', (l) => {
      if (l === 'n') return console.log(JSON.stringify([...n.connections()].length));
      globalThis.gc(); globalThis.gc();
      console.log(JSON.stringify(process.memoryUsage().heapUsed));
    });
    process.stdin.on('end', () => process.exit(0));`;
  const child = spawn(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { cwd: CORE_DIR, stdio: 'pipe' });
  child.stderr.resume();
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const ask = async (q: string): Promise<number> => {
    child.stdin.write(`${q}\n`);
    const r = await lines.next();
    if (r.done) throw new Error('node process exited');
    return JSON.parse(r.value) as number;
  };
  const first = await lines.next();
  const { port, wsPort } = JSON.parse(first.value as string) as { port: number; wsPort: number };
  return { child, port, wsPort, heapUsed: () => ask('gc'), connections: () => ask('n') };
}

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

it('clients on topics of their own that come and go, over TCP and WebSocket: no heap left behind per closed connection', async () => {
  const node = await nodeProcess();
  cleanup.push(() => node.child.kill());
  let next = 0;
  /** `n` clients, 100 at a time, each on a new topic: SUB, PUB, its event back, then GOODBYE (even) or a reset (odd). */
  const wave = async (n: number, ws: boolean): Promise<void> => {
    const one = async (): Promise<void> => {
      const i = next++;
      const topic = `soak.c${i}`;
      const c = ws ? await RawWs.connect(`ws://127.0.0.1:${node.wsPort}`) : await RawClient.connect(node.port, {}, `127.0.0.${2 + (i % 200)}`);
      c.sub(topic, 1);
      c.pub(topic, Buffer.from(`hello ${i}`));
      await c.waitFor((g) => g.topic === topic);
      if (i % 2 === 0) c.send({ type: FrameType.GOODBYE, payload: encodeBody({ code: 0, reason: 'done' }) });
      c.close();
    };
    for (let k = 0; k < n; k += 100) await Promise.all(Array.from({ length: Math.min(100, n - k) }, one));
    await until(async () => (await node.connections()) === 0, 'every connection closed', 15_000);
  };
  await wave(500, false); // warm-up: JIT, pools
  await wave(100, true);
  const base = await node.heapUsed();
  for (let w = 0; w < 3; w++) {
    await wave(700, false);
    await wave(300, true);
  }
  const grown = (await node.heapUsed()) - base;
  // 3,000 closed connections: before, ~10 MB (3.5 KB each); a fixed allowance for caches that fill up (top topics, ids).
  expect(grown, `heap grew by ${Math.round(grown / 1024)} KB after 3,000 connections`).toBeLessThan(1.5 * 1024 * 1024);
}, 120_000);

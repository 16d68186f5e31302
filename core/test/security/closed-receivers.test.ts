import { expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { RawClient, RawWs, memoryNode, sleep, until, cleanups } from '@meshbus/testkit';

/**
 * A connection that has closed holds no memory. Clients on topics of their
 * own (a user's, a device's: `soak.c<i>`) that subscribe, publish, get their
 * event and leave, half with GOODBYE and half by reset, over TCP and
 * WebSocket: the node's heap after a full GC stays where it was.
 *
 * Before (found by the 12-wave soak, `npm run test:reliability`), two
 * things held every closed connection (its session, socket, decoder and
 * queues, ~3.5 KB of heap): the route cache, whose entry for a topic
 * published once kept its receivers until the cache held 16,384 topics (now
 * dropped when a subscription of the topic goes, or by the node's timer
 * while it waits for its first hit: receivers-cache.ts), and
 * the close deadline, a timer armed at every close and never cleared, which
 * kept the connection for drainTimeout (5 s) after it was gone. The node's
 * heap grew by ~3.5 MB per 1,000 such clients, linearly.
 */

const cleanup = cleanups();

it('clients on topics of their own that come and go, over TCP and WebSocket: no heap left behind per closed connection', async () => {
  const node = await memoryNode({ maxConnectionsPerIp: 100_000 });
  cleanup.push(() => node.kill());
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
  await sleep(1200);
  const base = (await node.memory()).heapUsed;
  for (let w = 0; w < 3; w++) {
    await wave(700, false);
    await wave(300, true);
  }
  await sleep(1200);
  const grown = (await node.memory()).heapUsed - base;
  // 3,000 closed connections: before, ~10 MB (3.5 KB each); a fixed allowance for caches that fill up (top topics, ids).
  expect(grown, `heap grew by ${Math.round(grown / 1024)} KB after 3,000 connections`).toBeLessThan(1.5 * 1024 * 1024);
}, 120_000);

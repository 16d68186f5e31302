/**
 * A draining node tells its clients to go elsewhere over the first half of
 * drainTimeout, not all in one instant: at every rolling restart, a node's
 * tens of thousands of clients reconnecting to its peers at once is a
 * reconnect storm (NATS's lame-duck mode spreads its closes the same way).
 */
import { describe, expect, it } from 'vitest';
import { FrameType, decodeGoodbye } from '@meshbus/proto';
import { RawClient, cleanups } from '@meshbus/testkit';
import { silentLogger, startNode } from '../src/index.js';

const cleanup = cleanups();

describe('drain', () => {
  it('spreads the GOODBYEs of 200 clients over the first half of drainTimeout; each client still gets one, and the node stops when they have left', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, drainTimeout: 2000 });
    const clients: RawClient[] = [];
    for (let i = 0; i < 200; i++) clients.push(await RawClient.connect(n.port));
    cleanup.push(() => {
      for (const c of clients) c.close();
    });
    // Each client leaves as soon as it is told (as the SDK does), and notes when.
    const toldAt = new Map<RawClient, number>();
    const t0 = Date.now();
    const stopped = n.shutdown().then(() => Date.now() - t0);
    while (toldAt.size < clients.length && Date.now() - t0 < 5000) {
      for (const c of clients) {
        if (toldAt.has(c) || !c.got.some((g) => g.type === FrameType.GOODBYE)) continue;
        toldAt.set(c, Date.now() - t0);
        c.close();
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const times = [...toldAt.values()].sort((a, b) => a - b);
    expect(times).toHaveLength(200);
    // Before: all 200 within a few ms. Now 2 per 10 ms step over ~1 s (timers on a loaded machine only stretch it).
    expect(times[199]! - times[0]!).toBeGreaterThan(500);
    expect(times.filter((t) => t < times[0]! + 100).length).toBeLessThan(50);
    expect(times[199]!).toBeLessThan(2000);
    // Every client was told (none cut without a GOODBYE), and the node stopped once they had all left, before its deadline.
    expect(await stopped).toBeLessThan(2000 + 1000);
    for (const c of clients) expect(decodeGoodbye(c.got.find((g) => g.type === FrameType.GOODBYE)!.payload).code).toBe(2012); // MB_ERR_DRAINING
  });

  it('a few clients are told at once', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, drainTimeout: 5000 });
    const clients = [await RawClient.connect(n.port), await RawClient.connect(n.port)];
    cleanup.push(() => clients.forEach((c) => c.close()));
    const t0 = Date.now();
    const stopping = n.shutdown();
    await Promise.all(clients.map((c) => c.waitFor((g) => g.type === FrameType.GOODBYE)));
    expect(Date.now() - t0).toBeLessThan(500);
    clients.forEach((c) => c.close());
    await stopping;
  });
});

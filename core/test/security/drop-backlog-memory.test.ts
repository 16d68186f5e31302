/**
 * A subscriber that never reads, behind a 'drop' subscription, costs the node
 * what its bound says, however many events are dropped for it (SPEC 10.6).
 * Review of 2026-12-04: each event dropped left a slot in the connection's
 * backlog arrays until its wire drained, which a reader that never reads
 * never does. One such client (TCP or WebSocket) took a node's heap from 133
 * to 720 MB in 30 s while meshbus_outbound_held_bytes said 8 MiB, and ran a
 * node with --max-old-space-size=256 out of memory in 17 s. A node process
 * run with --expose-gc; heap after full collections, measured after 0.4 M
 * and after 1.6 M events: what the queue holds is the same at both, so
 * the heap must be too. No timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { RawClient, memoryNode, stuckSubscriber, type MemoryNode, type RawWs } from '@meshbus/testkit';

const MiB = 1024 * 1024;
const BATCH = 1000;
const batch = Buffer.concat(Array.from({ length: BATCH }, () => encodeFrame({ type: FrameType.PUB, topic: 'flood.x', payload: new Uint8Array(16) })));

let node: MemoryNode | undefined;
const clients: Array<RawClient | RawWs> = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  node?.kill();
  node = undefined;
});

/** Publishes `events` 16-byte events on flood.x, a round trip every 64,000 (so the node has read them all). */
async function flood(pub: RawClient, events: number): Promise<void> {
  for (let i = 0; i < events; i += BATCH) {
    pub.sendBytes(batch);
    if (i % (64 * BATCH) === 0) await pub.flush(20_000);
  }
  await pub.flush(20_000);
}

describe("a never-reading 'drop' subscriber's memory", () => {
  for (const kind of ['TCP', 'WebSocket'] as const) {
    it(`${kind}: the node's heap does not grow with the events dropped for it`, async () => {
      node = await memoryNode({ outboundBudget: 32 * MiB });
      const n = node;
      const stuck = await stuckSubscriber(n, kind, 'flood.>', { slow: 'drop' });
      clients.push(stuck);
      const pub = await RawClient.connect(n.port);
      clients.push(pub);
      await flood(pub, 400_000);
      const early = (await n.memory()).heapUsed;
      await flood(pub, 1_200_000);
      const late = (await n.memory()).heapUsed;
      // The subscriber is still there (dropped for, not closed: its events are 'drop').
      expect(stuck.closed).toBe(false);
      // Before: ~38 B of heap per event dropped, ~45 MB more for these 1.2 M.
      expect(late - early).toBeLessThan(8 * MiB);
    }, 60_000);
  }
});

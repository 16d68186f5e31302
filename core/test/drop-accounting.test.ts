import { describe, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { RawClient, RawWs, until, cleanups } from '@meshbus/testkit';
import { stuckReader as stuckReaderOn, type ReaderKind } from './stuck-reader.js';

/**
 * Every event a node loses is in its node-wide counters (`stats.dropped`,
 * /v1/node, `meshbus_dropped_total`), each once: what the receiver got and
 * what the node counted as dropped add up to what was published (core/README
 * "Counters"). Before, the events a client connection still had queued when
 * it closed were counted in its own `dropped` only (a slow consumer closed,
 * a fatal ERROR or GOODBYE past the bound: OutboundQueue.sendFinal), or in
 * nothing at all (the socket closed while events were queued), so
 * `dropped.slow` fell short of what was lost. TCP and WebSocket clients
 * (one queue and close path: Connection, OutboundQueue).
 */
const cleanup = cleanups();

const PAYLOAD = 16 * 1024;
const MAX_PENDING = 64 * 1024;
const frame = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(PAYLOAD, 1) }));
const burst = Buffer.concat(Array.from({ length: 20 }, () => frame));

/** A node with a small bound, a subscriber on `feed` that stopped reading, and a publisher. */
type Kind = ReaderKind;
function stuckReader(slow: 'drop' | 'disconnect', kind: Kind): ReturnType<typeof stuckReaderOn> {
  return stuckReaderOn(cleanup, kind, { maxPending: MAX_PENDING, writeDeadline: 60_000 }, slow);
}

/** Publishes bursts until the reader's wire is backed up, then `extra` more; returns the events published. */
async function flood(pub: RawClient, session: { backedUp: boolean }, extra: number, stop?: () => boolean): Promise<number> {
  let sent = 0;
  for (let i = 0; i < 1000 && !session.backedUp && !stop?.(); i++) {
    pub.sendBytes(burst);
    sent += 20;
    await pub.flush();
  }
  expect(session.backedUp || stop?.()).toBe(true);
  for (let i = 0; i < extra && !stop?.(); i++) {
    pub.sendBytes(burst);
    sent += 20;
    await pub.flush();
  }
  return sent;
}

describe.each(['tcp', 'ws'] as const)('%s: a client connection closed with events queued: received + dropped.slow = published', (kind) => {
  it("slow 'drop', closed by a fatal ERROR past the bound (the node refuses its garbage)", async () => {
    const { n, stuck, pub, session } = await stuckReader('drop', kind);
    let sent = await flood(pub, session, 10);
    const droppedBefore = n.stats.dropped.slow;
    expect(droppedBefore).toBeGreaterThan(0); // its queue was full: the oldest were dropped to make room
    // Events that fill the bound but for a few bytes: the ERROR (over 100 bytes) will not fit behind what waits.
    const overhead = encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(0) }).length;
    for (let i = 0; i < 20 && MAX_PENDING - session.pending > overhead + 8; i++) {
      pub.sendBytes(encodeFrame({ type: FrameType.PUB, topic: 'feed', payload: Buffer.alloc(MAX_PENDING - session.pending - overhead - 8, 2) }));
      await pub.flush();
      sent++;
    }
    expect(MAX_PENDING - session.pending).toBeLessThanOrEqual(overhead + 8);
    // Bytes that are no frame: the node sends a fatal ERROR as its last frame (sendFinal), which does not fit behind what
    // waits: the queued events are discarded.
    stuck.sendBytes(Buffer.alloc(64, 0xff));
    // Read again only once the node gave up on it (the ERROR it sent): before, the queue would simply drain.
    await until(() => n.stats.protocolErrors > 0, 'the node refuses the garbage', 10_000);
    stuck.resumeReading();
    await stuck.waitClosed(15_000);
    const received = stuck.events('feed').length;
    expect(stuck.got.some((g) => g.type === FrameType.ERROR)).toBe(true);
    expect(n.stats.dropped.slow).toBeGreaterThan(droppedBefore); // the queued ones, discarded at the close
    expect(received + n.stats.dropped.slow).toBe(sent);
    expect(n.stats.noInterest).toBe(0);
    expect(session.dropped).toBe(n.stats.dropped.slow);
  });

  it("slow 'disconnect': a slow consumer, its queued (firm) events discarded when it is closed", async () => {
    const { n, stuck, pub, session } = await stuckReader('disconnect', kind);
    const sent = await flood(pub, session, 50, () => n.stats.slowConsumers > 0);
    await until(() => n.stats.slowConsumers === 1, 'a slow consumer', 10_000);
    stuck.resumeReading();
    await stuck.waitClosed(15_000);
    const received = stuck.events('feed').length;
    expect(n.stats.dropped.slow).toBeGreaterThan(0);
    // Events published once it was gone had no receiver: counted as such (meshbus_dropped_total{reason="no_interest"}).
    expect(received + n.stats.dropped.slow + n.stats.noInterest).toBe(sent);
    expect(session.dropped).toBe(n.stats.dropped.slow);
  });

  it("slow 'drop', its socket closed by the client: the events still queued are counted", async () => {
    const { n, stuck, pub, session } = await stuckReader('drop', kind);
    await flood(pub, session, 10);
    const before = n.stats.dropped.slow;
    expect(session.dropped).toBe(before);
    if (stuck instanceof RawClient) stuck.socket.destroy();
    else (stuck as RawWs).ws.terminate();
    await until(() => ![...n.connections()].some((c) => c === session), 'the node saw it close', 10_000);
    // What its queue held (up to maxPending, 64 KiB: 3 or 4 events of 16 KiB) is lost and counted, node-wide too.
    // What the kernel's socket buffers held was handed to the wire: sent, as far as any node can know.
    expect(n.stats.dropped.slow).toBeGreaterThan(before);
    expect(session.dropped).toBe(n.stats.dropped.slow);
  });
});

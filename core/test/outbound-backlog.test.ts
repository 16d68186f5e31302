import { describe, expect, it } from 'vitest';
import { FrameType, OFF, encodeFrame } from '@meshbus/proto';
import { OutboundQueue } from '../src/outbound-queue.js';
import type { Backlog } from '../src/outbound-backlog.js';
import type { Transport } from '../src/transport.js';

/**
 * A backlog's arrays stay proportional to what waits in it, however long its
 * reader stops reading (SPEC 10.6: what a node holds for a connection is
 * bounded). Review of 2026-12-04: entries dropped in place were removed only
 * when the wire drained, so a 'drop' queue whose reader never read grew by
 * one slot per event dropped (peer links are 'drop' queues too) while the
 * bytes it counted stayed within maxPending: one such client took a node's
 * heap from 133 to 720 MB in 30 s.
 */
const HIGH_WATER = 1000;
const MAX_PENDING = 4000;
const TAG = [1];
const EVENT = encodeFrame({ type: FrameType.PUB, topic: 'a.bc', payload: new Uint8Array(32) });

/** A 'drop' queue over a wire that never drains; `backlog()` is its backlog (private: read for the bound alone). */
function stuck(): { out: OutboundQueue; backlog: () => Backlog | undefined } {
  const t: Transport = { remote: 'test', kind: 'tcp', buffered: HIGH_WATER, write() {}, writeRange() {}, end() {}, destroy() {}, pause() {}, resume() {} };
  const out = new OutboundQueue(t, HIGH_WATER, MAX_PENDING, 'drop', {});
  return { out, backlog: () => (out as unknown as { backlog: Backlog | undefined }).backlog };
}

/** Slots the backlog's arrays hold; at most twice what waits plus the compaction's slack of 1,024 (and twice that before a squeeze). */
const slots = (b: Backlog | undefined): number => b?.heads.length ?? 0;

describe('a backlog whose reader never reads', () => {
  it('events only: the arrays keep what waits, not one slot per event dropped', () => {
    const { out, backlog } = stuck();
    for (let i = 0; i < 200_000; i++) out.send(EVENT, undefined, TAG);
    // Room for 30 events (maxPending less what the wire holds): the newest 30 wait, the rest were dropped, each counted.
    expect(out.dropped).toBe(200_000 - 30);
    expect(out.pending).toBe(MAX_PENDING);
    // Before: 200,000 slots (the arrays were compacted only when the wire drained).
    expect(slots(backlog())).toBeLessThan(3 * 1024);
  });

  it('a control frame first (it is never dropped): the events dropped behind it give their room back', () => {
    const { out, backlog } = stuck();
    expect(out.sendControl(encodeFrame({ type: FrameType.PONG }))).toBe(true);
    for (let i = 0; i < 200_000; i++) out.send(EVENT, undefined, TAG);
    const b = backlog()!;
    // The PONG still waits first, then the newest events.
    expect(b.tags[b.head]).not.toBe(TAG);
    expect(b.heads[b.head]!.length).toBe(64);
    expect(out.dropped).toBeGreaterThan(199_000);
    // Before: 200,001 slots, all but ~30 of them emptied in place behind the PONG.
    expect(slots(b)).toBeLessThan(3 * 1024);
  });

  it('what waits keeps its order through the compactions, and drains whole once the wire takes it', () => {
    const written: Uint8Array[] = [];
    let buffered = HIGH_WATER;
    const t: Transport = {
      remote: 'test',
      kind: 'tcp',
      get buffered() {
        return buffered;
      },
      write: (c) => void written.push(c),
      writeRange() {},
      end() {},
      destroy() {},
      pause() {},
      resume() {},
    };
    const out = new OutboundQueue(t, HIGH_WATER, MAX_PENDING, 'drop', {});
    out.sendControl(encodeFrame({ type: FrameType.PONG, correlation: 7 }));
    for (let i = 0; i < 50_000; i++) out.send(encodeFrame({ type: FrameType.PUB, topic: 'a.bc', payload: new Uint8Array(32), correlation: i }), undefined, TAG);
    buffered = 0;
    out.onDrain();
    // The PONG, then the newest events in the order they were sent, nothing dropped twice or lost.
    const corr = written.map((c) => new DataView(c.buffer, c.byteOffset).getUint32(OFF.CORRELATION));
    expect(corr[0]).toBe(7);
    const events = corr.slice(1);
    expect(events.length).toBeGreaterThan(20);
    expect(events).toEqual(Array.from({ length: events.length }, (_, k) => 50_000 - events.length + k));
    expect(out.dropped + events.length).toBe(50_000);
  });
});

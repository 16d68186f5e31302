import { describe, expect, it } from 'vitest';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { OutboundQueue } from '../src/outbound-queue.js';
import type { Transport } from '../src/transport.js';

/**
 * A run (publish-run.ts: events back to back in one input chunk) handed to an
 * outbound queue whose wire is backed up must be what one send per event
 * would be: each event queued, dropped or refused on its own, counted as an
 * event. Before, a run was one backlog entry: a 'drop' queue (peer links)
 * dropped it whole and counted one event, and a receiver past its bound got
 * none of it where it got the events that fitted.
 */
const HIGH_WATER = 1000;

/** A queue over a wire holding `buffered` unsent bytes that never drain (a reader that stopped). */
function stuck(policy: 'drop' | 'disconnect', maxPending: number): { out: OutboundQueue; written: number[]; slow: () => number } {
  const written: number[] = [];
  let slow = 0;
  const t: Transport = {
    remote: 'test',
    kind: 'tcp',
    buffered: HIGH_WATER,
    write: (c) => void written.push(c.length),
    writeRange: (_b, s, e) => void written.push(e - s),
    end() {},
    destroy() {},
    pause() {},
    resume() {},
  };
  return { out: new OutboundQueue(t, HIGH_WATER, maxPending, policy, { overflow: () => void slow++ }), written, slow: () => slow };
}

/** `n` events of 100 bytes each (64-byte header, 4-byte topic, 32-byte payload), back to back. */
function run(n: number): Uint8Array {
  const f = encodeFrame({ type: FrameType.PUB, topic: 'a.bc', payload: new Uint8Array(32) });
  expect(f.length).toBe(100);
  return Buffer.concat(Array.from({ length: n }, () => f));
}

describe('a run handed to a backed-up queue', () => {
  it("'drop' policy: the newest events that fit are kept, the older ones dropped to make room, each counted", () => {
    // Room for 30 events: maxPending 4,000 less the 1,000 the wire holds. Each event is taken, the oldest
    // queued ones dropped for it (SPEC §10.6): 70 dropped, one by one, the last 30 kept.
    const { out, written } = stuck('drop', 4000);
    const bytes = run(100);
    expect(out.sendRun(bytes, 0, bytes.length, 100)).toBe(100);
    expect(out.runBytes).toBe(10_000);
    expect(out.dropped).toBe(70);
    expect(out.pending).toBe(4000);
    expect(written).toEqual([]);
  });

  it("'disconnect' policy: the events that fit are queued, then the receiver is a slow consumer once", () => {
    const { out, slow } = stuck('disconnect', 4000);
    const bytes = run(100);
    expect(out.sendRun(bytes, 0, bytes.length, 100)).toBe(30);
    expect(slow()).toBeGreaterThan(0);
    // The 70 that did not fit are lost with the connection (a slow consumer is closed): each counted once, as every
    // event a queue loses (core/README "Counters"; before, they were counted nowhere).
    expect(out.dropped).toBe(70);
  });

  it('a wire that takes the run gets it as one range', () => {
    const { out, written } = stuck('drop', 1 << 20);
    (out as unknown as { transport: { buffered: number } }).transport.buffered = 0;
    const bytes = run(100);
    expect(out.sendRun(bytes, 0, bytes.length, 100)).toBe(100);
    expect(written).toEqual([10_000]);
  });
});

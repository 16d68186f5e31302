/**
 * A queue group member that stops reading, replayed from NATS Streaming's
 * "Stalled Queue member may stall the group"
 * (https://github.com/nats-io/nats-streaming-server/issues/375): it was still
 * picked in turn, and once it no longer held the publisher back (maxStall) it
 * did not even count as congested, so with 'drop' about half of the group's
 * events were dropped for it while the other member read everything it got.
 * Fails before: 12,000 events, ~2,300 dropped.
 */
import { expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { nodeKit, until } from '@meshbus/testkit';
import { startNode } from '../src/index.js';

const kit = nodeKit({ start: startNode });

it('a member that stopped reading gets no more than it can hold while another member reads: nothing is dropped, every event reaches the group once', async () => {
  const n = await kit.node({ maxPending: 64 * 1024 });
  const reader = await kit.raw(n);
  reader.sub('q.x', 1, { q: 'g', slow: 'drop' });
  await reader.flush();
  const stalled = await kit.raw(n);
  stalled.sub('q.x', 1, { q: 'g', slow: 'drop' });
  await stalled.flush();
  stalled.pauseReading();
  const pub = await kit.raw(n);
  const N = 12_000;
  const payload = new Uint8Array(1024);
  for (let i = 0; i < N; i++) {
    pub.pub('q.x', payload);
    if (i % 200 === 199) await pub.flush();
  }
  await pub.flush();
  // What the stalled member's socket took before it backed up waits in the kernel: read it now.
  stalled.resumeReading();
  const count = (): number => reader.events('q.x').length + stalled.events('q.x').length;
  await until(() => count() + n.stats.dropped.slow >= N, 'every event delivered or dropped', 20_000);
  expect(n.stats.dropped.slow).toBe(0);
  expect(count()).toBe(N);
  expect(reader.events('q.x').length).toBeGreaterThan(stalled.events('q.x').length);
  expect(stalled.got.some((g) => g.type === FrameType.ERROR)).toBe(false);
});

/**
 * The hub's ledger of queue copies a keyed leaf may hand back (sent-copies.ts), alone: checkpoints,
 * the bound and when the leaf counts as backed up. The links around it: leaf-key-abuse.test.ts and
 * leaf-handback-review/.
 */
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { expect, it } from 'vitest';
import { Frame, FrameType, encodeFrame } from '@meshbus/proto';
import { CHECKPOINT, SentCopies } from '../src/sent-copies.js';

const origin = randomBytes(8);
const copy = (seq: number): Frame => {
  const b = Buffer.from(encodeFrame({ type: FrameType.PUB, topic: 'lq', payload: Buffer.from(String(seq)), origin, seq, sid: 1 }));
  return new Frame(b, 0, b.length);
};

/** Copies 1..`n` sent for group g, none answered: the checkpoint PINGs asked for. */
function sendCopies(s: SentCopies, n: number): number[] {
  const pings: number[] = [];
  for (let i = 1; i <= n; i++) {
    const c = s.sent(copy(i), 'g');
    if (c !== 0) pings.push(c);
  }
  return pings;
}

it('a checkpoint every 256 copies; at its answer what went before is forgotten', () => {
  const s = new SentCopies();
  const pings = sendCopies(s, 600);
  expect(pings).toHaveLength(2);
  expect(pings.every((c) => c >= CHECKPOINT)).toBe(true);
  expect(s.size).toBe(600);
  expect(s.takeBack(copy(10), 'g')).toBe(true);
  expect(s.takeBack(copy(10), 'g')).toBe(false); // once
  expect(s.takeBack(copy(11), 'other')).toBe(false); // sent for g
  // The first answered: copies 1..256 forgotten (one taken back already); one still out, so no new one.
  expect(s.answered(pings[0]!)).toBe(0);
  expect(s.size).toBe(600 - 256);
  expect(s.takeBack(copy(100), 'g')).toBe(false);
  // The last answered: none left out; 88 copies sent since, none skipped: the next comes at 256 as ever.
  expect(s.answered(pings[1]!)).toBe(0);
  expect(s.size).toBe(88);
});

it('a leaf that answers each checkpoint at once gets one per 256 copies (before the review\'s fix: one per copy, 9,745 for 10,000)', () => {
  const s = new SentCopies();
  let pings = 0;
  let out: number[] = [];
  for (let i = 1; i <= 10_000; i++) {
    const answering = out;
    out = [];
    const c = s.sent(copy(i), 'g');
    if (c !== 0) out.push(c);
    // The PONG of a checkpoint comes back one copy later.
    for (const a of answering) {
      const next = s.answered(a);
      if (next !== 0) out.push(next);
    }
    pings += out.length;
  }
  expect(pings).toBe(Math.floor(10_000 / 256));
});

it('65,536 copies held take under 8 MB of heap (string keys took 23.2 MB)', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = (): number => (gc(), gc(), process.memoryUsage().heapUsed);
  const before = heap();
  const s = new SentCopies();
  sendCopies(s, 65_536);
  const grown = heap() - before;
  expect(s.size).toBe(65_536);
  expect(grown).toBeLessThan(8e6);
});

it('a leaf far behind is full; once it answers, a checkpoint covers the copies sent while its checkpoints were all out, and it is not full any more (before: full for good)', () => {
  const s = new SentCopies();
  // The leaf reads nothing: 8 checkpoints go out (the first 2,048 copies), then none until one is answered.
  const pings = sendCopies(s, 40_000);
  expect(pings).toHaveLength(8);
  expect(s.full).toBe(true);
  // It catches up: every checkpoint answered, in order.
  let last = 0;
  for (const c of pings) last = s.answered(c);
  expect(s.full).toBe(true); // 37,952 copies still recorded: no checkpoint of theirs went out
  expect(last).toBeGreaterThanOrEqual(CHECKPOINT);
  expect(s.answered(last)).toBe(0);
  expect(s.full).toBe(false);
  expect(s.size).toBe(0);
});

it('at most 65,536 copies are held: past that the oldest is forgotten', () => {
  const s = new SentCopies();
  sendCopies(s, 70_000);
  expect(s.size).toBe(65_536);
  expect(s.takeBack(copy(1), 'g')).toBe(false);
  expect(s.takeBack(copy(70_000), 'g')).toBe(true);
});

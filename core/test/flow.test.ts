import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { nodeKit, until, type RawClient } from '@meshbus/testkit';
import { startNode, type MeshNode, type NodeOptions } from '../src/index.js';

/** Flow control and the per-connection bound (SPEC §10): behaviour, counted by the node's stats. */

const kit = nodeKit({ start: startNode });
const node = (opts?: NodeOptions): Promise<MeshNode> => kit.node(opts);
const client = (n: MeshNode): Promise<RawClient> => kit.raw(n);

describe('flow control wakes publishers whenever a receiver gets below its mark', () => {
  it('a 1 MiB event the kernel takes at once does not stall the publisher (issue #14.2)', async () => {
    const n = await node();
    const sub = await client(n);
    sub.sub('big', 1);
    await sub.flush();
    const pub = await client(n);
    pub.pub('big', new Uint8Array(1048576));
    await sub.waitFor((g) => g.topic === 'big');
    await pub.flush(5000);
    // Old code: the publisher stayed paused until maxStall (no 'drain' after a write taken whole).
    expect(n.stats.flowStalls).toBe(0);
    expect(n.stats.slowConsumers).toBe(0);
  });

  it('events of the maximum payload one after another never hit maxStall, and a later 20 MiB burst reaches the same subscriber', async () => {
    const n = await node();
    const sub = await client(n);
    sub.sub('big', 1);
    await sub.flush();
    const pub = await client(n);
    pub.pub('big', new Uint8Array(1048576));
    await sub.waitFor((g) => g.topic === 'big');
    await pub.flush(5000);
    // Old code: the receiver was left "overrun" and this burst disconnected it (MB_ERR_SLOW_CONSUMER).
    const burst = 20;
    for (let i = 0; i < burst; i++) pub.pub('big', new Uint8Array(1048576).fill(i));
    await pub.flush(20_000);
    await until(() => sub.events('big').length === burst + 1 || sub.closed, 'the burst or a close', 20_000);
    expect(sub.closed).toBe(false);
    expect(sub.events('big')).toHaveLength(burst + 1);
    expect(n.stats.slowConsumers).toBe(0);
    expect(n.stats.flowStalls).toBe(0);
  });
});

describe("a 'drop' subscriber never holds anyone back (issue #14.3, SPEC §10.6)", () => {
  it('a stuck drop subscriber drops while the publisher is never stalled for it and a normal subscriber gets everything', async () => {
    const n = await node({ maxPending: 256 * 1024 });
    const stuck = await client(n);
    stuck.sub('feed', 1, { slow: 'drop' });
    await stuck.flush();
    stuck.socket.pause();
    const normal = await client(n);
    normal.sub('feed', 1);
    await normal.flush();
    const pub = await client(n);
    const total = 4000; // 16 MiB
    const payload = Buffer.alloc(4096, 7);
    for (let i = 0; i < total; i++) pub.pub('feed', payload);
    await pub.flush(20_000);
    await until(() => normal.events().length === total);
    expect(normal.events()).toHaveLength(total);
    // Old code: the publisher waited maxStall for the stuck one before it started dropping.
    expect(n.stats.flowStalls).toBe(0);
    expect(n.stats.dropped.slow).toBeGreaterThan(0);
    expect(stuck.closed).toBe(false);
  });
});

describe('every byte queued for a connection counts against its bound (issue #13.6)', () => {
  const maxPending = 256 * 1024;
  for (const kind of ['REQ with no responders (ERROR)', 'PING (PONG)'] as const) {
    it(`a connection that never reads and pipelines ${kind} is closed as a slow consumer with its queue bounded`, async () => {
      const n = await node({ maxPending, drainTimeout: 500 });
      const c = await client(n);
      c.socket.pause();
      let maxSeen = 0;
      const sample = setInterval(() => {
        for (const s of n.connections()) maxSeen = Math.max(maxSeen, s.pending);
      }, 5);
      try {
        // ~150k answers of ~100 bytes: far more than the bound plus what the kernel's socket buffers hold.
        for (let i = 0; i < 150_000 && !c.closed; i++) {
          if (kind === 'PING (PONG)') c.send({ type: FrameType.PING, correlation: i + 1 });
          else c.pub('nobody.home', 'x', i + 1, FrameType.REQ);
          if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
        }
        // Old code: answers went out through an urgent path past the bound, the connection stayed open.
        await until(() => n.stats.slowConsumers === 1, 'one slow consumer', 20_000);
      } finally {
        clearInterval(sample);
      }
      await until(() => n.connectionCount === 0, 'no connection left', 10_000);
      expect(maxSeen).toBeLessThanOrEqual(maxPending + 1024);
    });
  }
});

describe("a 'drop' connection drops events, never control frames", () => {
  it('every PONG reaches a stuck drop subscriber that pipelined PINGs between events it receives itself', async () => {
    const n = await node({ maxPending: 1024 * 1024 });
    const c = await client(n);
    c.sub('self', 1, { slow: 'drop' });
    await c.flush();
    c.socket.pause();
    const payload = Buffer.alloc(4096, 3);
    const pings = 2000;
    const sent = new Set<number>();
    for (let i = 0; i < pings * 4; i++) {
      c.pub('self', payload); // 32 MiB echoed back: past the kernel's buffers and the bound
      if (i % 4 === 3) {
        sent.add(1_000_000 + i);
        c.send({ type: FrameType.PING, correlation: 1_000_000 + i });
      }
    }
    await until(() => n.stats.dropped.slow > 0, 'a drop counted', 20_000);
    c.socket.resume();
    // Old code: PONGs sat in the same backlog as events and were dropped as "oldest events".
    const pongs = (): number => c.got.filter((g) => g.type === FrameType.PONG && sent.has(g.correlation)).length;
    await until(() => pongs() === pings, 'every PONG', 20_000);
    expect(c.closed).toBe(false);
    expect(c.events('self').length).toBeLessThan(pings * 4);
  });
});

describe('SUB max: the node counts deliveries per subscription and ends it at its max (issue #14.4)', () => {
  /** `count` publishes to `topic` in one write: the node routes them all from one input chunk. */
  function burst(pub: RawClient, topic: string, count: number): void {
    const frames = Array.from({ length: count }, (_, i) => encodeFrame({ type: FrameType.PUB, topic, payload: Buffer.from(String(i)) }));
    pub.socket.write(Buffer.concat(frames));
  }

  for (const total of [10, 200]) {
    it(`a queue member with max 1 gets 1 of ${total}, the other member the rest, none lost`, async () => {
      const n = await node();
      const a = await client(n);
      const b = await client(n);
      a.sub('q', 1, { q: 'g', max: 1 });
      b.sub('q', 1, { q: 'g' });
      await a.flush();
      await b.flush();
      const pub = await client(n);
      burst(pub, 'q', total);
      await pub.flush();
      await until(() => a.events('q').length + b.events('q').length >= total);
      await a.flush();
      await b.flush();
      // Old code: the node ignored max and kept choosing A (A's SDK then discarded what it got past 1).
      expect(a.events('q')).toHaveLength(1);
      expect(b.events('q')).toHaveLength(total - 1);
      const subs = [...n.connections()].map((s) => s.subscriptionCount).sort();
      expect(subs).toEqual([0, 0, 1]); // A's subscription ended; B's remains; the publisher has none
    });
  }

  it('a plain subscription with max 3 gets exactly 3 events and then ends', async () => {
    const n = await node();
    const a = await client(n);
    a.sub('p.>', 1, { max: 3 });
    a.sub('other', 2);
    await a.flush();
    const pub = await client(n);
    burst(pub, 'p.x', 10);
    await pub.flush();
    await a.flush();
    expect(a.events('p.x')).toHaveLength(3);
    expect([...n.connections()].map((s) => s.subscriptionCount).sort()).toEqual([0, 1]);
  });

  it('UNSUB with max ends the subscription after that many more deliveries', async () => {
    const n = await node();
    const a = await client(n);
    a.sub('u', 7);
    await a.flush();
    const pub = await client(n);
    burst(pub, 'u', 2);
    await pub.flush();
    await until(() => a.events('u').length === 2);
    a.send({ type: FrameType.UNSUB, correlation: 7, payload: encodeBody({ max: 2 }) });
    await a.flush();
    burst(pub, 'u', 5);
    await pub.flush();
    await a.flush();
    expect(a.events('u')).toHaveLength(4);
  });

  it('refuses a max that is not an integer 1..2^31 with MB_ERR_BAD_BODY', async () => {
    const n = await node();
    const a = await client(n);
    for (const [sid, max] of [[1, 0], [2, 2 ** 31 + 1], [3, 1.5], [4, -1]] as const) {
      a.sub('x', sid, { max });
      const e = await a.waitFor((g) => g.type === FrameType.ERROR && g.correlation === sid);
      expect(e.error).toBe('MB_ERR_BAD_BODY');
    }
    expect(a.closed).toBe(false);
  });
});

import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, decodeError, encodeBody, encodeFrame } from '@meshbus/proto';
import { MeshNode, silentLogger, startNode } from '../src/index.js';
import { WsGateway } from '../src/ws/index.js';
import { RawClient, RawWs, type RawFrames } from '@meshbus/testkit';

/**
 * Flow control and the per-connection bound (SPEC §10.6): behaviour, counted
 * by the node's stats. Every flow test runs over TCP and over WebSocket:
 * both are a ClientSession over a Transport, and each transport has its own
 * way of reporting progress (socket drain / write callback vs ws send callback).
 */

/**
 * 'wsz': WebSocket with permessage-deflate (messages wait in ws's compression
 * queue before the socket; progress is the send callback after compression),
 * for the wake-up tests. Payloads are random so compression cannot make a
 * flood small enough to fit the kernel's buffers.
 */
type Kind = 'tcp' | 'ws' | 'wsz';
const KINDS: Kind[] = ['tcp', 'ws', 'wsz'];

const nodes: MeshNode[] = [];
const gateways = new Map<MeshNode, WsGateway>();
const clients: RawFrames[] = [];
async function node(opts: ConstructorParameters<typeof MeshNode>[0] = {}): Promise<MeshNode> {
  const n = await startNode({ port: 0, logger: silentLogger, ...opts });
  nodes.push(n);
  return n;
}
/** A raw client of `n` over `kind` (the node's WebSocket gateway is started on first use). */
async function client(n: MeshNode, kind: Kind = 'tcp'): Promise<RawFrames> {
  let c: RawFrames;
  if (kind === 'tcp') c = await RawClient.connect(n.port);
  else {
    const deflate = kind === 'wsz';
    let g = gateways.get(n);
    if (!g) gateways.set(n, (g = await new WsGateway(n, { port: 0, host: '127.0.0.1', perMessageDeflate: deflate }).listen()));
    c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`, { ws: { perMessageDeflate: deflate } });
  }
  clients.push(c);
  return c;
}
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const g of gateways.values()) await g.close();
  gateways.clear();
  for (const n of nodes.splice(0)) await n.close();
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A fresh 4 KiB of random bytes per event: permessage-deflate cannot shrink
 * it (a repeated payload compresses to a few bytes through the shared window).
 */
function noise(): Buffer {
  return randomBytes(4096);
}

/** Events the node reported dropped for `sid` (ERROR MB_ERR_EVENTS_DROPPED, body `count`). */
function reportedDrops(c: RawFrames, sid: number): number {
  let n = 0;
  for (const g of c.got) if (g.error === 'MB_ERR_EVENTS_DROPPED' && g.correlation === sid) n += decodeError(g.payload).count ?? 0;
  return n;
}

for (const kind of KINDS) {
  describe(`${kind}: flow control wakes publishers whenever a receiver gets below its mark`, () => {
    it('a 1 MiB event the kernel takes at once does not stall the publisher (issue #14.2)', async () => {
      const n = await node();
      const sub = await client(n, kind);
      sub.sub('big', 1);
      await sub.flush();
      const pub = await client(n, kind);
      pub.pub('big', randomBytes(1048576));
      await sub.waitFor((g) => g.topic === 'big');
      await pub.flush(5000);
      // Old code: the publisher stayed paused until maxStall (no 'drain' after a write taken whole).
      expect(n.stats.flowStalls).toBe(0);
      expect(n.stats.slowConsumers).toBe(0);
    });

    it('events of the maximum payload one after another never hit maxStall, and a later 20 MiB burst reaches the same subscriber', async () => {
      const n = await node();
      const sub = await client(n, kind);
      sub.sub('big', 1);
      await sub.flush();
      const pub = await client(n, kind);
      pub.pub('big', randomBytes(1048576));
      await sub.waitFor((g) => g.topic === 'big');
      await pub.flush(5000);
      // Old code: the receiver was left "overrun" and this burst disconnected it (MB_ERR_SLOW_CONSUMER).
      const burst = 20;
      for (let i = 0; i < burst; i++) pub.pub('big', randomBytes(1048576));
      await pub.flush(20_000);
      await until(() => sub.events('big').length === burst + 1 || sub.closed, 20_000);
      expect(sub.closed).toBe(false);
      expect(sub.events('big')).toHaveLength(burst + 1);
      expect(n.stats.slowConsumers).toBe(0);
      expect(n.stats.flowStalls).toBe(0);
    });
  });

  // Compressing tens of MiB of random bytes costs seconds of CPU per test: the wake-ups above cover deflate's own queue.
  if (kind === 'wsz') continue;

  describe(`${kind}: a 'drop' subscriber never holds anyone back (issue #14.3, SPEC §10.6)`, () => {
    it('a stuck drop subscriber drops while the publisher is never stalled for it and a normal subscriber gets everything', async () => {
      const n = await node({ maxPending: 256 * 1024 });
      const stuck = await client(n, kind);
      stuck.sub('feed', 1, { slow: 'drop' });
      await stuck.flush();
      stuck.pauseReading();
      const normal = await client(n, kind);
      normal.sub('feed', 1);
      await normal.flush();
      const pub = await client(n, kind);
      const total = 4000; // 16 MiB
      for (let i = 0; i < total; i++) pub.pub('feed', noise());
      await pub.flush(20_000);
      await until(() => normal.events().length === total);
      expect(normal.events()).toHaveLength(total);
      // Old code: the publisher waited maxStall for the stuck one before it started dropping.
      expect(n.stats.flowStalls).toBe(0);
      expect(n.stats.dropped.slow).toBeGreaterThan(0);
      expect(stuck.closed).toBe(false);
    });
  });

  describe(`${kind}: every byte queued for a connection counts against its bound (issue #13.6)`, () => {
    const maxPending = 256 * 1024;
    for (const kind of ['REQ with no responders (ERROR)', 'PING (PONG)'] as const) {
      it(`a connection that never reads and pipelines ${kind} is closed as a slow consumer with its queue bounded`, async () => {
        const n = await node({ maxPending, drainTimeout: 500 });
        const c = await client(n, kind);
        c.pauseReading();
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
          await until(() => n.stats.slowConsumers === 1, 20_000);
        } finally {
          clearInterval(sample);
        }
        await until(() => n.connectionCount === 0, 10_000);
        expect(maxSeen).toBeLessThanOrEqual(maxPending + 1024);
      });
    }
  });

  describe(`${kind}: a 'drop' connection drops events, never control frames`, () => {
    it('every PONG reaches a stuck drop subscriber that pipelined PINGs between events it receives itself', async () => {
      const n = await node({ maxPending: 1024 * 1024 });
      const c = await client(n, kind);
      c.sub('self', 1, { slow: 'drop' });
      await c.flush();
      c.pauseReading();
      const pings = 2000;
      const sent = new Set<number>();
      for (let i = 0; i < pings * 4; i++) {
        c.pub('self', noise()); // 32 MiB echoed back: past the kernel's buffers and the bound
        if (i % 4 === 3) {
          sent.add(1_000_000 + i);
          c.send({ type: FrameType.PING, correlation: 1_000_000 + i });
        }
      }
      await until(() => n.stats.dropped.slow > 0, 20_000);
      c.resumeReading();
      // Old code: PONGs sat in the same backlog as events and were dropped as "oldest events".
      const pongs = (): number => c.got.filter((g) => g.type === FrameType.PONG && sent.has(g.correlation)).length;
      await until(() => pongs() === pings, 20_000);
      expect(c.closed).toBe(false);
      expect(c.events('self').length).toBeLessThan(pings * 4);
    });
  });

  describe(`${kind}: the slow-consumer policy is per subscription (SPEC §10.6)`, () => {
    it("a stuck connection with a 'drop' and a 'disconnect' subscription: the drop events past the bound are dropped and reported to their sid, the connection stays, its queue stays bounded", async () => {
      const maxPending = 256 * 1024;
      const n = await node({ maxPending });
      const c = await client(n, kind);
      c.sub('feed', 1, { slow: 'drop' });
      c.sub('ctl', 2); // 'disconnect' (the default)
      await c.flush();
      c.pauseReading();
      const pub = await client(n, kind);
      let maxSeen = 0;
      const sample = setInterval(() => {
        for (const s of n.connections()) maxSeen = Math.max(maxSeen, s.pending);
      }, 5);
      const total = 4000; // 16 MiB of 'feed': far past the bound and the kernel's buffers
      try {
        for (let i = 0; i < total; i++) pub.pub('feed', noise());
        await pub.flush(20_000);
        await until(() => n.stats.dropped.slow > 0, 20_000);
      } finally {
        clearInterval(sample);
      }
      // Old code: a connection mixing policies was 'disconnect' for everything: closed as a slow consumer here.
      expect(n.stats.slowConsumers).toBe(0);
      expect(n.stats.flowStalls).toBe(0);
      expect(maxSeen).toBeLessThanOrEqual(maxPending + 64 * 1024);
      c.resumeReading();
      for (let i = 0; i < 10; i++) pub.pub('ctl', `c${i}`);
      await pub.flush();
      await until(() => c.events('ctl').length === 10);
      // Every 'feed' event is either received or reported dropped to sid 1, exactly once.
      await until(() => c.events('feed').length + reportedDrops(c, 1) === total, 20_000);
      expect(reportedDrops(c, 1)).toBe(n.stats.dropped.slow);
      expect(reportedDrops(c, 2)).toBe(0);
      expect(c.closed).toBe(false);
      const e = c.got.find((g) => g.error === 'MB_ERR_EVENTS_DROPPED')!;
      expect(e.correlation).toBe(1);
    });

    it("the 'disconnect' subscription of that connection still makes it a slow consumer, and an event it shares with a 'drop' one is firm", async () => {
      const maxPending = 256 * 1024;
      const n = await node({ maxPending, drainTimeout: 500 });
      const c = await client(n, kind);
      c.sub('mix.a', 1, { slow: 'drop' });
      c.sub('mix.*', 2); // also matches mix.a: events on mix.a must not be dropped
      await c.flush();
      c.pauseReading();
      const pub = await client(n, kind);
      for (let i = 0; i < 4000 && n.stats.slowConsumers === 0; i++) {
        pub.pub('mix.a', noise());
        if (i % 200 === 199) {
          await pub.flush(20_000);
          // Nothing dropped while it was open: every event on mix.a is firm.
          if (n.stats.slowConsumers === 0) expect(n.stats.dropped.slow).toBe(0);
        }
      }
      await until(() => n.stats.slowConsumers === 1, 20_000);
      // What it still had queued when it was closed is lost, and counted (core/README "Counters").
      // Its memory is released: the connection is gone from the node.
      await until(() => n.connectionCount === 1, 10_000);
    });

    it("a reader that stops with only 'drop' events waiting is not closed by the write deadline; the report reaches it when it reads again", async () => {
      const writeDeadline = 300;
      const n = await node({ maxPending: 256 * 1024, writeDeadline });
      const c = await client(n, kind);
      c.sub('feed', 1, { slow: 'drop' });
      c.sub('ctl', 2);
      await c.flush();
      c.pauseReading();
      const pub = await client(n, kind);
      for (let i = 0; i < 2000; i++) pub.pub('feed', noise());
      await pub.flush(20_000);
      await until(() => n.stats.dropped.slow > 0, 20_000);
      // Several write deadlines pass while the node holds only droppable events for it (and one round of reports).
      await new Promise((r) => setTimeout(r, writeDeadline * 5));
      expect(n.stats.slowConsumers).toBe(0);
      expect(n.connectionCount).toBe(2);
      c.resumeReading();
      await until(() => c.events('feed').length + reportedDrops(c, 1) === 2000, 20_000);
      expect(c.closed).toBe(false);
    });

    it("a queue member that chose 'drop' drops (and reports) instead of disconnecting its connection", async () => {
      const n = await node({ maxPending: 256 * 1024 });
      const c = await client(n, kind);
      c.sub('work', 5, { q: 'g', slow: 'drop' });
      c.sub('other', 6);
      await c.flush();
      c.pauseReading();
      const pub = await client(n, kind);
      const total = 4000;
      for (let i = 0; i < total; i++) pub.pub('work', noise());
      await pub.flush(20_000);
      await until(() => n.stats.dropped.slow > 0, 20_000);
      expect(n.stats.slowConsumers).toBe(0);
      c.resumeReading();
      await until(() => c.events('work').length + reportedDrops(c, 5) === total, 20_000);
      expect(c.events('work').every((g) => g.sid === 5)).toBe(true);
      expect(c.closed).toBe(false);
    });
  });
}

describe('SUB max: the node counts deliveries per subscription and ends it at its max (issue #14.4)', () => {
  /** `count` publishes to `topic` in one write: the node routes them all from one input chunk. */
  function burst(pub: RawFrames, topic: string, count: number): void {
    const frames = Array.from({ length: count }, (_, i) => encodeFrame({ type: FrameType.PUB, topic, payload: Buffer.from(String(i)) }));
    (pub as RawClient).socket.write(Buffer.concat(frames));
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

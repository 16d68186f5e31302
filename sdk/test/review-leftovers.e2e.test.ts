/**
 * Client faults left by the last session's review.
 *
 * 1. A client's own drain() under way when its node drains (GOODBYE
 *    `answered`, MB_ERR_DRAINING): the acked publishes the node said it did
 *    not take were rejected MB_ERR_CONNECTION_CLOSED, the drain ending with
 *    the connection. The drain now goes on to another server of the list
 *    (as nats.js does across a reconnect), which takes them.
 * 2. A resuming iterator that falls behind again and again emitted a
 *    'recovery' status at each catch-up re-SUB (an internal step).
 * 3. A SubAck that does not answer the catch-up SUB (a stale one, from an
 *    earlier SUB) cleared `behind`: events the consumer had no room for
 *    were skipped for good, and the catch-up resumed after them.
 *
 * The review of those fixes (second round):
 *
 * 4. Telling the catch-up's answer by the position it echoes was a guess:
 *    after an epoch change the answer to `since [Ep_B, 0]` is `{recovered,
 *    Ep_C, 0}`, taken as stale, and the subscription stayed behind for good;
 *    a gap notice of the replaced subscription (recovered: false) was taken
 *    as the answer (events skipped, reordered, twice). Each SUB of a resuming
 *    subscription now carries a `ref` its subscription's SubAcks echo.
 * 5. drain() flushed again and again (a PING/PONG loop) while something was
 *    owed on a live connection (an outbox that cannot be read, acked
 *    publishes NACKed MB_ERR_DRAINING by a node still answering): it now
 *    waits for that connection to go.
 * 6. drain() never settled when no node came (the only one shut down):
 *    `drainTimeout` (default 30 s) closes the client then.
 */
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { FrameType, decodeError, decodeSub, decodeSubAck, encodeBody, encodeFrame, type SubAckBody } from '@meshbus/proto';
import { RawClient, cleanups, nodeKit, ownRedisServers, sleep, until, url } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode } from '@meshbus/core';
import { ClusterNode } from '@meshbus/cluster';
import { connect, type Client, type Msg, type Outbox, type OutboxEntry, type Status, type Subscription } from '../src/index.js';
import { fakeTcpNode, fakeWelcome, recordStatus, storedOnce, storedPayloads } from './helpers.js';

const fx = nodeKit();
const redis = ownRedisServers();
const cleanup = cleanups();


/** A reader of `s` that reads until nothing came for `quiet` ms; a next() that lost its race is kept for the next read. */
function reader(s: Subscription, quiet = 1000): { got: string[]; read(max?: number): Promise<void> } {
  const it = s[Symbol.asyncIterator]();
  let next = it.next();
  const got: string[] = [];
  return {
    got,
    async read(max = 200) {
      for (let k = 0; k < max; k++) {
        const m = await Promise.race([next, sleep(quiet).then(() => undefined)]);
        if (!m || m.done) return;
        next = it.next();
        got.push(Buffer.from((m.value as Msg).data).toString());
      }
    },
  };
}

const events = (from: number, to: number): string[] => [...Array(to - from + 1).keys()].map((i) => `e${from + i}`);
const recoveries = (got: Status[]): boolean[] => got.flatMap((s) => (s.type === 'recovery' ? [s.recovered] : []));

/**
 * A resuming iterator (`pendingLimit` 5) with 40 events published behind it
 * on a node whose history of `h.>` keeps `size` events.
 */
async function behindItsConsumer(ctx: { skip(note?: string): never }, prefix: string, size: number) {
  const r = await redis.start(ctx);
  const n = await fx.node({ durable: { redis: r.url, prefix, topics: [{ pattern: 'h.>', history: { size } }] } });
  const pub = fx.track(await connect(url(n)));
  const c = fx.track(await connect(url(n)));
  const statuses = recordStatus(c);
  const s = c.subscribe('h.t', { recover: true, pendingLimit: 5 });
  await c.flush();
  await until(() => s.recovered !== undefined, 'the resume answered');
  for (let i = 1; i <= 40; i++) await pub.publish('h.t', `e${i}`, { ack: true });
  await c.flush();
  return { s, statuses, pub };
}

/**
 * `n` acked publishes ("0" .. "n-1") on `dd.t`: the first half, then the
 * client's drain and its node's together (hundreds of acked publishes on the
 * wire), then the second half during the drain. Each one's outcome ('ok' or
 * its code), and 'drained' when drain() settled within 10 s.
 */
async function drainWithItsNode(c: Client, node: MeshNode, n: number): Promise<{ got: string[]; drained: string }> {
  const outcomes: Array<Promise<string>> = [];
  const publish = (i: number): void => void outcomes.push(c.publish('dd.t', String(i), { ack: true }).then(() => 'ok', (e: { code?: string }) => e.code ?? String(e)));
  for (let i = 0; i < n / 2; i++) {
    publish(i);
    if (i % 100 === 99) await sleep(1);
  }
  const drained = c.drain().then(() => 'drained');
  const down = node.shutdown();
  for (let i = n / 2; i < n; i++) publish(i);
  const got = await Promise.all(outcomes);
  await down;
  return { got, drained: await Promise.race([drained, sleep(10_000).then(() => 'drain() still pending')]) };
}

describe('review leftovers', () => {
  it("fault 1: drain() under way when its node drains sends the acked publishes the node did not take to the next server, and resolves", async (ctx) => {
    const r = await redis.start(ctx);
    const rc = new Redis(r.port, '127.0.0.1');
    fx.defer(() => void rc.disconnect());
    const prefix = 'rlDrain:';
    const durable = { redis: r.url, prefix, topics: [{ pattern: 'dd.>', history: { size: 100_000 } }] };
    const a = await fx.node({ durable, drainTimeout: 4000 });
    const b = await fx.node({ durable });
    const c = fx.track(await connect([url(a), url(b)], { reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
    const statuses = recordStatus(c);
    const N = 2000;
    const { got, drained } = await drainWithItsNode(c, a, N);
    expect(drained).toBe('drained');
    const failed = got.map((o, i) => [i, o] as const).filter(([, o]) => o !== 'ok');
    // Before: the 1,000 made during the drain rejected MB_ERR_CONNECTION_CLOSED ("client is closed"), though the node
    // had said it took none of them.
    expect({ failed: failed.length, first: failed.slice(0, 3) }).toEqual({ failed: 0, first: [] });
    expect(await storedOnce(rc, prefix, N)).toEqual({ twice: [], missing: [], stored: N });
    // The drain went on with b, then closed.
    expect(statuses.flatMap((s) => (s.type === 'connected' ? [s.server] : []))).toEqual([`tcp://127.0.0.1:${b.port}`]);
    expect(c.isClosed).toBe(true);
  }, 30_000);

  it('fault 1: with nowhere else to send them (reconnect: false) they are rejected MB_ERR_CONNECTION_CLOSED, none of those stored, and drain() resolves', async (ctx) => {
    const r = await redis.start(ctx);
    const rc = new Redis(r.port, '127.0.0.1');
    fx.defer(() => void rc.disconnect());
    const prefix = 'rlAlone:';
    const a = await fx.node({ durable: { redis: r.url, prefix, topics: [{ pattern: 'dd.>', history: { size: 100_000 } }] }, drainTimeout: 4000 });
    const c = fx.track(await connect(url(a), { reconnect: false }));
    const N = 2000;
    const { got, drained } = await drainWithItsNode(c, a, N);
    expect(drained).toBe('drained');
    expect(new Set(got)).toEqual(new Set(['ok', 'MB_ERR_CONNECTION_CLOSED']));
    const ok = got.flatMap((o, i) => (o === 'ok' ? [String(i)] : []));
    await until(async () => (await storedPayloads(rc, prefix)).length >= ok.length, 'the acknowledged stored', 5000).catch(() => undefined);
    expect((await storedPayloads(rc, prefix)).sort()).toEqual(ok.sort());
  }, 30_000);

  it('fault 2: a resuming iterator that falls behind again and again is not told "recovery" at each catch-up', async (ctx) => {
    const { s, statuses } = await behindItsConsumer(ctx, 'rlRecover:', 1000);
    const app = reader(s);
    await app.read();
    expect(app.got).toEqual(events(1, 40));
    // Before: [true, true, true, …], one more per catch-up re-SUB.
    expect(recoveries(statuses)).toEqual([true]);
  }, 30_000);

  it("fault 2: a reconnect's resume while behind is told, the catch-ups around it are not", async (ctx) => {
    const r = await redis.start(ctx);
    const durable = { redis: r.url, prefix: 'rlRecon:', topics: [{ pattern: 'h.>', history: { size: 1000 } }] };
    const a = await fx.node({ durable, drainTimeout: 2000 });
    const b = await fx.node({ durable });
    const pub = fx.track(await connect(url(a)));
    const c = fx.track(await connect([url(a), url(b)], { reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
    const statuses = recordStatus(c);
    const s = c.subscribe('h.t', { recover: true, pendingLimit: 5 });
    await c.flush();
    await until(() => s.recovered !== undefined, 'the resume answered');
    for (let i = 1; i <= 20; i++) await pub.publish('h.t', `e${i}`, { ack: true });
    await until(() => s.behind, 'behind its consumer');
    await a.shutdown();
    await until(() => c.isConnected, 'reconnected');
    const app = reader(s);
    await app.read();
    expect(app.got).toEqual(events(1, 20));
    expect(recoveries(statuses)).toEqual([true, true]);
  }, 30_000);

  it('fault 2: a catch-up that could not recover (history trimmed meanwhile) is told', async (ctx) => {
    const { s, statuses, pub } = await behindItsConsumer(ctx, 'rlTrim:', 10);
    const app = reader(s);
    await app.read();
    // e6..e30 trimmed while the consumer was behind: the catch-up goes on from now, and says so.
    expect(app.got).toEqual(events(1, 5));
    expect(recoveries(statuses)).toEqual([true, false]);
    expect(s.recovered).toBe(false);
    await pub.publish('h.t', 'e41', { ack: true });
    await app.read();
    expect(app.got.slice(5)).toEqual(['e41']);
  }, 30_000);

  it('fault 3: a SubAck that does not answer the catch-up SUB leaves the subscription behind', async () => {
    // A SubAck recovered at `offset`, by default with the first SUB's ref (a stale one, once a catch-up SUB was sent).
    const subAck = (sid: number, offset: number, ref = subs[0]?.ref): Uint8Array => fakeSubAck(sid, { recovered: true, epoch: 'E', offset, ...(ref === undefined ? {} : { ref }) });
    const { c, subs, socket } = await fakeResumingNode((s, sub, n) => {
      // Answered as a node does: the SubAck echoes the position asked for and the SUB's ref, the replay follows.
      if (n === 1) s.write(subAck(sub.sid, 0));
      else {
        const from = sub.since![1];
        // One more stale SubAck (the replaced subscription's: the first SUB's ref) before the answer.
        s.write(subAck(sub.sid, 0));
        s.write(subAck(sub.sid, from, sub.ref));
        for (let i = from + 1; i <= 7; i++) s.write(fakeEvent(sub.sid, i));
      }
    });
    const sock = socket();
    const statuses = recordStatus(c);
    const s = c.subscribe('t', { recover: true, pendingLimit: 4 });
    await until(() => s.recovered !== undefined, 'the resume answered');
    const sid = subs[0]!.sid;
    for (let i = 1; i <= 6; i++) sock.write(fakeEvent(sid, i));
    await until(() => s.pending === 4 && s.behind, 'behind after e4');
    const app = reader(s, 300);
    await app.read(1);
    // A SubAck the client asked nothing for (a stale one of the first SUB), then a live event: still behind, dropped.
    sock.write(subAck(sid, 0));
    sock.write(fakeEvent(sid, 7));
    await c.flush();
    expect(s.behind).toBe(true);
    await app.read();
    // Before: [e1, e2, e3, e4, e7, e5, e6, e7]: the stale SubAck let e7 in past e5 and e6 (and reset the position, so
    // e7 came twice); without a catch-up reading them again, e5 and e6 were skipped for good.
    expect(app.got).toEqual(events(1, 7));
    expect({ sid: subs[1]!.sid, since: subs[1]!.since }).toEqual({ sid, since: ['E', 4] });
    expect(recoveries(statuses)).toEqual([true]);
  });
});

/** A custom Outbox whose takeAll() fails (a storage read error): what it holds stays, and it keeps counting it. */
class UnreadableOutbox implements Outbox {
  entries: OutboxEntry[] = [];
  takes = 0;
  get count(): number {
    return this.entries.length;
  }
  get bytes(): number {
    return this.entries.reduce((a, e) => a + e.topic.length + e.payload.length, 0);
  }
  add(e: OutboxEntry): void {
    this.entries.push(e);
  }
  takeAll(): OutboxEntry[] {
    this.takes++;
    throw new Error('storage read failed');
  }
  clear(): number {
    return this.entries.splice(0).length;
  }
}

/** Counts the client's flush() calls (drain() flushes through it). */
function countFlushes(c: object): { n: number } {
  const seen = { n: 0 };
  const o = c as { flush: (t?: number) => Promise<void> };
  const flush = o.flush.bind(c);
  o.flush = (t) => {
    seen.n++;
    return flush(t);
  };
  return seen;
}

/** A fake node's SubAck on `sid`. */
const fakeSubAck = (sid: number, body: SubAckBody): Uint8Array => encodeFrame({ type: FrameType.ACK, correlation: sid, payload: encodeBody(body) });
/** A fake node's sid-addressed delivery of `e<i>` at [epoch, i]. */
const fakeEvent = (sid: number, i: number, epoch = 'E'): Uint8Array =>
  encodeFrame({ type: FrameType.PUB, topic: 't', sid, payload: Buffer.from(`${epoch === 'E' ? 'e' : epoch}${i}`), ext: { position: { epoch, offset: i } } });

/** A SUB the fake node read: its sid, `since` and `ref`. */
interface SubSeen {
  sid: number;
  since: [string, number] | undefined;
  ref: number | undefined;
}

/**
 * A fake node for a resuming subscription, and a client connected to it:
 * HELLO and PING answered, each SUB recorded in `subs` and handed to `onSub`
 * with the socket and its number (1 for the first); `socket()` is the
 * connection to the client, to write live events on.
 */
async function fakeResumingNode(onSub: (s: Socket, sub: SubSeen, n: number) => void): Promise<{ c: Client; subs: SubSeen[]; socket: () => Socket }> {
  const subs: SubSeen[] = [];
  let sock: Socket | undefined;
  const node = await fakeTcpNode((s, f) => {
    sock = s;
    if (f.type === FrameType.HELLO) s.write(fakeWelcome());
    else if (f.type === FrameType.PING) s.write(encodeFrame({ type: FrameType.PONG, correlation: f.correlation }));
    else if (f.type === FrameType.SUB) {
      const { since, ref } = decodeSub(f.payload);
      const sub = { sid: f.correlation, since, ref };
      subs.push(sub);
      onSub(s, sub, subs.length);
    }
  });
  cleanup.push(() => node.stop());
  const c = await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 5, max: 20 } });
  cleanup.push(() => c.close());
  return { c, subs, socket: () => sock! };
}

describe('review leftovers, second round', () => {
  it('fault 4: the SUB of a resuming subscription carries a ref (0..65535), checked as the other SUB fields', () => {
    expect(decodeSub(encodeBody({ since: ['E', 3], ref: 0 })).ref).toBe(0);
    expect(decodeSub(encodeBody({ since: ['E', 3], ref: 65_535 })).ref).toBe(65_535);
    for (const ref of [-1, 65_536, 1.5, 'x', true]) expect(() => decodeSub(encodeBody({ since: ['E', 3], ref })), String(ref)).toThrow(expect.objectContaining({ code: 'MB_ERR_BAD_BODY' }));
  });

  it("fault 4: a node echoes a SUB's ref in its answer and in the subscription's gap notices, and refuses a bad one", async (ctx) => {
    const r = await redis.start(ctx);
    const rc = new Redis(r.port, '127.0.0.1');
    fx.defer(() => void rc.disconnect());
    const prefix = 'rlRef:';
    const n = await fx.node({ durable: { redis: r.url, prefix, topics: [{ pattern: 'h.>', history: { size: 1000 } }] } });
    const pub = fx.track(await connect(url(n)));
    let epoch = '';
    for (let i = 1; i <= 8; i++) epoch = (await pub.publish('h.t', `e${i}`, { ack: true }))!.epoch;
    for (const k of await rc.keys(`${prefix}*`)) if ((await rc.type(k)) === 'stream') await rc.xdel(k, '5-0');
    const raw = await RawClient.connect(n.port);
    fx.defer(() => raw.close());
    const acks = (sid: number): SubAckBody[] => raw.got.filter((g) => g.type === FrameType.ACK && g.correlation === sid).map((g) => decodeSubAck(g.payload));
    raw.send({ type: FrameType.SUB, topic: 'h.t', correlation: 1, payload: encodeBody({ since: [epoch, 0], ref: 77 }) });
    raw.send({ type: FrameType.SUB, topic: 'h.t', correlation: 2, payload: encodeBody({ since: [epoch, 0] }) });
    raw.send({ type: FrameType.SUB, topic: 'h.t', correlation: 3, payload: encodeBody({ since: [epoch, 0], ref: 65_536 }) });
    await until(() => acks(1).length === 2 && acks(2).length === 2, 'answers and gap notices');
    // The answer, then the notice of the hole at 5 (recovery.ts lost()), both with the SUB's ref; none without one.
    expect(acks(1)).toEqual([
      { recovered: true, epoch, offset: 0, ref: 77 },
      { recovered: false, epoch, offset: 5, ref: 77 },
    ]);
    expect(acks(2)).toEqual([
      { recovered: true, epoch, offset: 0 },
      { recovered: false, epoch, offset: 5 },
    ]);
    const refused = raw.got.filter((g) => g.type === FrameType.ERROR && g.correlation === 3).map((g) => decodeError(g.payload).code);
    expect(refused).toEqual([1010]); // MB_ERR_BAD_BODY
  });

  it("fault 4: a gap notice of the replaced subscription, between the catch-up SUB and its answer, is not taken as the answer", async () => {
    const { c, subs, socket } = await fakeResumingNode((s, { sid, since, ref }, n) => {
      if (n === 1) s.write(fakeSubAck(sid, { recovered: true, epoch: 'E', offset: 0, ref }));
      else {
        const from = since![1];
        const old = subs[0]!.ref;
        // In flight before the node took the catch-up SUB: the replaced subscription's replay hit a hole at 7
        // (recovery.ts lost(): recovered false, offset 7), then sent e8.
        s.write(fakeSubAck(sid, { recovered: false, epoch: 'E', offset: 7, ref: old }));
        s.write(fakeEvent(sid, 8));
        // The catch-up's answer and its replay: the same hole, its own notice, then e8.
        s.write(fakeSubAck(sid, { recovered: true, epoch: 'E', offset: from, ref }));
        for (let i = from + 1; i <= 6; i++) s.write(fakeEvent(sid, i));
        s.write(fakeSubAck(sid, { recovered: false, epoch: 'E', offset: 7, ref }));
        s.write(fakeEvent(sid, 8));
      }
    });
    const statuses = recordStatus(c);
    const s = c.subscribe('t', { recover: true, pendingLimit: 4 });
    await until(() => s.recovered !== undefined, 'the resume answered');
    const sid = subs[0]!.sid;
    for (let i = 1; i <= 6; i++) socket().write(fakeEvent(sid, i));
    await until(() => s.pending === 4 && s.behind, 'behind after e4');
    const app = reader(s, 300);
    await app.read();
    // Before: [e1, e2, e3, e4, e8, e5, e6, e8]: the stale notice ended `behind`, its e8 came in before e5.
    expect(app.got).toEqual(['e1', 'e2', 'e3', 'e4', 'e5', 'e6', 'e8']);
    expect(subs.map((x) => typeof x.ref)).toEqual(['number', 'number']);
    expect(subs[1]!.ref).not.toBe(subs[0]!.ref);
    // The first answer, and the catch-up's own notice (e7 lost): the catch-up's recovered answer is not told.
    expect(recoveries(statuses)).toEqual([true, false]);
  });

  it('fault 4: the answer to a catch-up SUB in another epoch (history lost) ends `behind` (fake node)', async () => {
    const { c, subs, socket } = await fakeResumingNode((s, { sid, ref }, n) => {
      if (n === 1) s.write(fakeSubAck(sid, { recovered: true, epoch: 'D', offset: 0, ref }));
      // history-store READ: an offset-0 position of an older epoch is recovered in the new one, from its start.
      else {
        s.write(fakeSubAck(sid, { recovered: true, epoch: 'F', offset: 0, ref }));
        for (let i = 1; i <= 3; i++) s.write(fakeEvent(sid, i, 'F'));
      }
    });
    const sock = socket();
    const s = c.subscribe('t', { recover: true, pendingLimit: 2 });
    await until(() => s.recovered !== undefined, 'the resume answered');
    const { sid, ref } = subs[0]!;
    sock.write(fakeEvent(sid, 1, 'D'));
    sock.write(fakeEvent(sid, 2, 'D'));
    // The history lost: the subscription goes on in epoch E from its start (the queue full meanwhile), and the first
    // write after it, through another node, starts epoch F.
    sock.write(fakeSubAck(sid, { recovered: false, epoch: 'E', offset: 0, ref }));
    for (let i = 1; i <= 3; i++) sock.write(fakeEvent(sid, i, 'F'));
    await until(() => s.behind, 'behind');
    expect(s.position).toEqual({ epoch: 'E', offset: 0 });
    const app = reader(s, 300);
    await app.read();
    expect(subs[1]!.since).toEqual(['E', 0]);
    // Before: [D1, D2], `behind` for good (the answer's epoch F was not the `since` E asked for: taken as stale).
    expect(app.got).toEqual(['D1', 'D2', 'F1', 'F2', 'F3']);
    expect(s.behind).toBe(false);
  });

  it('fault 4: from an older node (SubAcks without ref) any SubAck after the catch-up SUB ends `behind`', async () => {
    // An older node: its SubAcks carry no ref.
    const { c, socket } = await fakeResumingNode((s, { sid, since }, n) => {
      const from = since![1];
      s.write(fakeSubAck(sid, { recovered: true, epoch: 'E', offset: from }));
      if (n > 1) for (let i = from + 1; i <= 6; i++) s.write(fakeEvent(sid, i));
    });
    const s = c.subscribe('t', { since: { epoch: 'E', offset: 0 }, pendingLimit: 4 });
    await until(() => s.recovered !== undefined, 'the resume answered');
    for (let i = 1; i <= 6; i++) socket().write(fakeEvent(1, i));
    await until(() => s.behind, 'behind');
    const app = reader(s, 300);
    await app.read();
    expect(app.got).toEqual(events(1, 6));
  });

  it('fault 4: a resuming iterator behind a history lost and rewritten through another node gets the new events (real mesh)', async (ctx) => {
    const r = await redis.start(ctx);
    const rc = new Redis(r.port, '127.0.0.1');
    const stops: Array<() => Promise<void>> = [];
    fx.defer(async () => {
      rc.disconnect();
      for (const f of stops.splice(0).reverse()) await f();
    });
    const prefix = 'rlEpoch:';
    const durable = { redis: r.url, prefix, topics: [{ pattern: 'h.>', history: { size: 1000 } }] };
    const meshNode = async (seeds: string[]): Promise<{ node: MeshNode; cluster: ClusterNode; url: string; peer: string }> => {
      const node = await startNode({ port: 0, logger: silentLogger, pingInterval: 1000, durable } as never);
      const cluster = await new ClusterNode(node, { port: 0, pingInterval: 200, redialMin: 50, redialMax: 500, seeds }).start();
      stops.push(async () => {
        await cluster.stop().catch(() => {});
        await node.close().catch(() => {});
      });
      return { node, cluster, url: `127.0.0.1:${node.port}`, peer: `127.0.0.1:${cluster.port}` };
    };
    const a = await meshNode([]);
    const b = await meshNode([a.peer]);
    const w = await meshNode([a.peer, b.peer]);
    const all = [a, b, w];
    await until(() => all.every((x) => all.every((y) => x === y || x.cluster.link(y.node.id)?.state === 'up')), 'meshed');
    const pub = fx.track(await connect(w.url));
    const c = fx.track(await connect([a.url, b.url], { reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
    const s = c.subscribe('h.t', { recover: true, pendingLimit: 2 });
    await c.flush();
    await until(() => s.recovered !== undefined, 'the resume answered');
    await pub.publish('h.t', 'e1', { ack: true });
    await pub.publish('h.t', 'e2', { ack: true });
    await until(() => s.pending === 2, 'the queue full');
    // The history lost (keys removed, or a store failover without persistence), then the client's node gone: it
    // resumes on b (not recovered, b's epoch, offset 0); the first new write, through w, starts another epoch.
    for (const k of await rc.keys(`${prefix}*`)) if (k.includes('h.t')) await rc.del(k);
    await a.cluster.stop();
    await a.node.close();
    await until(() => c.isConnected && s.recovered === false, 'resumed on b');
    for (let i = 1; i <= 5; i++) await pub.publish('h.t', `f${i}`, { ack: true });
    await until(() => s.behind, 'behind');
    const app = reader(s, 800);
    await app.read();
    await pub.publish('h.t', 'f6', { ack: true });
    await app.read();
    // Before: [e1, e2]: the catch-up's answer ({recovered, epoch of w, 0} to `since` [epoch of b, 0]) was taken as
    // stale, `behind` never ended.
    expect(app.got).toEqual(['e1', 'e2', 'f1', 'f2', 'f3', 'f4', 'f5', 'f6']);
  }, 30_000);

  it('fault 4: a resuming iterator over a history with holes gets each event once, in order (real node)', async (ctx) => {
    const r = await redis.start(ctx);
    const rc = new Redis(r.port, '127.0.0.1');
    fx.defer(() => void rc.disconnect());
    const prefix = 'rlHoles:';
    const n = await fx.node({ durable: { redis: r.url, prefix, topics: [{ pattern: 'h.>', history: { size: 100_000 } }] } });
    const pub = fx.track(await connect(url(n)));
    const N = 1500;
    let epoch = '';
    for (let i = 1; i <= N; i += 250) {
      const ps: Array<Promise<{ epoch: string } | undefined>> = [];
      for (let j = i; j < i + 250; j++) ps.push(pub.publish('h.t', `e${j}`, { ack: true }) as Promise<{ epoch: string } | undefined>);
      epoch = (await Promise.all(ps))[0]!.epoch;
    }
    let stream = '';
    for (const k of await rc.keys(`${prefix}*`)) if ((await rc.type(k)) === 'stream') stream = k;
    // Entries deleted by hand (or trimmed mid-replay): every replay crossing one sends a gap notice.
    for (let o = 7; o <= N; o += 7) await rc.xdel(stream, `${o}-0`);
    const c = fx.track(await connect(url(n)));
    const s = c.subscribe('h.t', { since: { epoch, offset: 0 }, pendingLimit: 16 });
    const offs: number[] = [];
    const it = s[Symbol.asyncIterator]();
    for (;;) {
      const m = await Promise.race([it.next(), sleep(1500).then(() => undefined)]);
      if (!m || m.done) break;
      offs.push((m.value as Msg).position!.offset);
      if (offs.length % 8 === 0) await sleep(0);
    }
    const backwards = offs.filter((o, i) => i > 0 && o <= offs[i - 1]!).length;
    const expected = [...Array(N).keys()].map((i) => i + 1).filter((o) => o % 7 !== 0);
    // Before: ~500 of 3,429 delivered on a 4,000-event run, some twice, out of order.
    expect({ backwards, received: offs.length, missing: expected.filter((o) => !offs.includes(o)).slice(0, 5) }).toEqual({ backwards: 0, received: expected.length, missing: [] });
  }, 30_000);

  it('fault 5: drain() with an outbox it cannot send on its connection waits without a flush loop, and closes at drainTimeout', async () => {
    const a = await fx.node({});
    const b = await fx.node({});
    const ob = new UnreadableOutbox();
    const c = fx.track(await connect([url(a), url(b)], { outbox: ob, drainTimeout: 1500, reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
    const statuses = recordStatus(c);
    c.on('status', (s) => {
      if (s.type === 'disconnected') c.publish('x.y', 'offline');
    });
    await a.close();
    await until(() => c.isConnected && ob.takes > 0, 'reconnected to b, the outbox not read');
    const flushes = countFlushes(c);
    const t0 = Date.now();
    const cpu0 = process.cpuUsage();
    const drained = c.drain().then(
      () => 'drained',
      (e: { code?: string }) => e.code,
    );
    const res = await Promise.race([drained, sleep(5000).then(() => 'drain() pending 5 s')]);
    const cpu = process.cpuUsage(cpu0);
    // Before: pending, with ~80,000 PING/PONG round trips in 3 s.
    expect(res).toBe('MB_ERR_TIMEOUT');
    expect(flushes.n).toBeLessThan(3);
    expect((cpu.user + cpu.system) / 1000).toBeLessThan(1000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    // Closed as close() closes: the outbox counted as unsent.
    expect(statuses.at(-1)).toEqual({ type: 'closed', unsent: 1 });
    expect(c.isClosed).toBe(true);
  });

  it('fault 5: drain() does not flush in a loop while a draining node NACKs MB_ERR_DRAINING on a connection it keeps open', async (ctx) => {
    const r = await redis.start(ctx);
    const durable = { redis: r.url, prefix: 'rlNack:', writeTimeoutMs: 4000, topics: [{ pattern: 'dd.>', history: { size: 1000 } }] };
    const a = await fx.node({ durable, drainTimeout: 8000 });
    const b = await fx.node({ durable });
    const c = fx.track(await connect([url(a), url(b)], { reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
    await c.publish('dd.t', 'warm', { ack: true });
    r.pause();
    // Its ACK given up on: the draining node waits for its store (answers owed) before its GOODBYE.
    const p1 = c.publish('dd.t', 'p1', { ack: true, ackTimeout: 300 }).then(() => 'ok', (e: { code?: string }) => e.code);
    await sleep(50);
    const down = a.shutdown();
    await sleep(100);
    // Read by the draining node: NACK MB_ERR_DRAINING, waiting again for the next connection.
    const p2 = c.publish('dd.t', 'p2', { ack: true }).then(() => 'ok', (e: { code?: string }) => e.code);
    expect(await p1).toBe('MB_ERR_TIMEOUT');
    const flushes = countFlushes(c);
    const drained = c.drain().then(() => 'drained');
    await sleep(2000);
    const during = flushes.n;
    r.resume();
    expect(await Promise.race([drained, sleep(15_000).then(() => 'drain() pending')])).toBe('drained');
    await down;
    // Before: thousands of round trips in those 2 s.
    expect(during).toBeLessThan(3);
    expect(await p2).toBe('ok');
  }, 30_000);

  it('fault 6: drain() settles at drainTimeout when the only node shut down (reconnect for ever), rejecting what is owed', async (ctx) => {
    const r = await redis.start(ctx);
    const a = await fx.node({ durable: { redis: r.url, prefix: 'rlNoNode:', topics: [{ pattern: 'dd.>', history: { size: 100_000 } }] }, drainTimeout: 2000 });
    const c = fx.track(await connect(url(a), { drainTimeout: 1500, reconnectBackoff: { base: 50, max: 200 } }));
    const statuses = recordStatus(c);
    const outcomes: Array<Promise<string>> = [];
    const publish = (i: number): void => void outcomes.push(c.publish('dd.t', String(i), { ack: true }).then(() => 'ok', (e: { code?: string }) => e.code ?? String(e)));
    for (let i = 0; i < 500; i++) {
      publish(i);
      if (i % 100 === 99) await sleep(1);
    }
    const t0 = Date.now();
    const drained = c.drain().then(
      () => 'drained',
      (e: { code?: string }) => e.code,
    );
    const down = a.shutdown();
    for (let i = 500; i < 1000; i++) publish(i);
    await down;
    // Before: pending for ever (a SIGTERM handler's `await client.drain()` never returned).
    expect(await Promise.race([drained, sleep(8000).then(() => 'drain() pending 8 s after the node stopped')])).toBe('MB_ERR_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(4000);
    const got = await Promise.race([Promise.all(outcomes), sleep(100).then(() => undefined)]);
    expect(got && new Set(got)).toEqual(new Set(['ok', 'MB_ERR_CONNECTION_CLOSED']));
    expect(c.isClosed).toBe(true);
    expect(statuses.at(-1)).toEqual({ type: 'closed', unsent: 0 });
  }, 30_000);

  it('fault 6: an offline drain settles at drainTimeout too, the outbox counted as unsent', async () => {
    const a = await fx.node({});
    const c = fx.track(await connect(url(a), { drainTimeout: 300, reconnectBackoff: { base: 50, max: 200 } }));
    const statuses = recordStatus(c);
    await a.close();
    await until(() => !c.isConnected, 'disconnected');
    c.publish('x.y', 'offline');
    const t0 = Date.now();
    await expect(c.drain()).rejects.toMatchObject({ code: 'MB_ERR_TIMEOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(statuses.at(-1)).toEqual({ type: 'closed', unsent: 1 });
  });

  it('fault 6: drainTimeout is checked as the other deadlines (> 0, Infinity allowed)', async () => {
    for (const drainTimeout of [0, -1, Number.NaN]) {
      await expect(connect('127.0.0.1:1', { drainTimeout }), String(drainTimeout)).rejects.toMatchObject({ code: 'MB_ERR_INVALID_ARGUMENT' });
    }
    const n = await fx.node({});
    const c = fx.track(await connect(url(n), { drainTimeout: Infinity }));
    await c.drain();
    expect(c.isClosed).toBe(true);
  });
});

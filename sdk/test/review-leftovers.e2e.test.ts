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
 */
import { describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { Frame, FrameType, decodeSub, encodeBody, encodeFrame } from '@meshbus/proto';
import { cleanups, nodeKit, ownRedisServers, sleep, until, url } from '@meshbus/testkit';
import { connect, type Msg, type Status, type Subscription } from '../src/index.js';
import { fakeTcpNode, fakeWelcome, recordStatus } from './helpers.js';

const fx = nodeKit();
const redis = ownRedisServers();
const cleanup = cleanups();

/** The payloads stored under `prefix` (every history stream). */
async function stored(r: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const key of await r.keys(`${prefix}*`)) {
    if ((await r.type(key)) !== 'stream') continue;
    for (const [, fields] of await r.xrangeBuffer(key, '-', '+')) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i]!.toString() === 'f') out.push(Buffer.from(new Frame(fields[i + 1]!, 0, fields[i + 1]!.length).payload).toString());
      }
    }
  }
  return out;
}

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
    const outcomes: Array<Promise<string>> = [];
    const publish = (i: number): void => void outcomes.push(c.publish('dd.t', String(i), { ack: true }).then(() => 'ok', (e: { code?: string }) => e.code ?? String(e)));
    for (let i = 0; i < N / 2; i++) {
      publish(i);
      if (i % 100 === 99) await sleep(1);
    }
    // The client's drain and its node's, with hundreds of acked publishes on the wire; more made during the drain.
    const drained = c.drain().then(() => 'drained');
    const down = a.shutdown();
    for (let i = N / 2; i < N; i++) publish(i);
    const got = await Promise.all(outcomes);
    await down;
    expect(await Promise.race([drained, sleep(10_000).then(() => 'drain() still pending')])).toBe('drained');
    const failed = got.map((o, i) => [i, o] as const).filter(([, o]) => o !== 'ok');
    // Before: the 1,000 made during the drain rejected MB_ERR_CONNECTION_CLOSED ("client is closed"), though the node
    // had said it took none of them.
    expect({ failed: failed.length, first: failed.slice(0, 3) }).toEqual({ failed: 0, first: [] });
    await until(async () => (await stored(rc, prefix)).length >= N, 'all stored', 5000).catch(() => undefined);
    const all = await stored(rc, prefix);
    const seen = new Map<string, number>();
    for (const p of all) seen.set(p, (seen.get(p) ?? 0) + 1);
    const twice = [...seen].filter(([, k]) => k > 1).map(([p]) => p);
    const missing = [...Array(N).keys()].map(String).filter((p) => !seen.has(p));
    expect({ twice: twice.slice(0, 5), missing: missing.slice(0, 5), stored: all.length }).toEqual({ twice: [], missing: [], stored: N });
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
    const outcomes: Array<Promise<string>> = [];
    const publish = (i: number): void => void outcomes.push(c.publish('dd.t', String(i), { ack: true }).then(() => 'ok', (e: { code?: string }) => e.code ?? String(e)));
    for (let i = 0; i < N / 2; i++) {
      publish(i);
      if (i % 100 === 99) await sleep(1);
    }
    const drained = c.drain().then(() => 'drained');
    const down = a.shutdown();
    for (let i = N / 2; i < N; i++) publish(i);
    const got = await Promise.all(outcomes);
    await down;
    expect(await Promise.race([drained, sleep(10_000).then(() => 'drain() still pending')])).toBe('drained');
    expect(new Set(got)).toEqual(new Set(['ok', 'MB_ERR_CONNECTION_CLOSED']));
    const ok = got.flatMap((o, i) => (o === 'ok' ? [String(i)] : []));
    await until(async () => (await stored(rc, prefix)).length >= ok.length, 'the acknowledged stored', 5000).catch(() => undefined);
    expect((await stored(rc, prefix)).sort()).toEqual(ok.sort());
  }, 30_000);

  it('fault 2: a resuming iterator that falls behind again and again is not told "recovery" at each catch-up', async (ctx) => {
    const r = await redis.start(ctx);
    const n = await fx.node({ durable: { redis: r.url, prefix: 'rlRecover:', topics: [{ pattern: 'h.>', history: { size: 1000 } }] } });
    const pub = fx.track(await connect(url(n)));
    const c = fx.track(await connect(url(n)));
    const statuses = recordStatus(c);
    const s = c.subscribe('h.t', { recover: true, pendingLimit: 5 });
    await c.flush();
    await until(() => s.recovered !== undefined, 'the resume answered');
    for (let i = 1; i <= 40; i++) await pub.publish('h.t', `e${i}`, { ack: true });
    await c.flush();
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
    const r = await redis.start(ctx);
    const n = await fx.node({ durable: { redis: r.url, prefix: 'rlTrim:', topics: [{ pattern: 'h.>', history: { size: 10 } }] } });
    const pub = fx.track(await connect(url(n)));
    const c = fx.track(await connect(url(n)));
    const statuses = recordStatus(c);
    const s = c.subscribe('h.t', { recover: true, pendingLimit: 5 });
    await c.flush();
    await until(() => s.recovered !== undefined, 'the resume answered');
    for (let i = 1; i <= 40; i++) await pub.publish('h.t', `e${i}`, { ack: true });
    await c.flush();
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
    const subs: Array<[number, unknown]> = [];
    let sock: import('node:net').Socket | undefined;
    const ev = (sid: number, i: number): Uint8Array =>
      encodeFrame({ type: FrameType.PUB, topic: 't', sid, payload: Buffer.from(`e${i}`), ext: { position: { epoch: 'E', offset: i } } });
    const subAck = (sid: number, offset: number): Uint8Array => encodeFrame({ type: FrameType.ACK, correlation: sid, payload: encodeBody({ recovered: true, epoch: 'E', offset }) });
    const node = await fakeTcpNode((s, f) => {
      sock = s;
      if (f.type === FrameType.HELLO) s.write(fakeWelcome());
      else if (f.type === FrameType.PING) s.write(encodeFrame({ type: FrameType.PONG, correlation: f.correlation }));
      else if (f.type === FrameType.SUB) {
        const since = decodeSub(f.payload).since;
        subs.push([f.correlation, since]);
        // Answered as a node does: the SubAck echoes the position asked for, the replay follows.
        if (subs.length === 1) s.write(subAck(f.correlation, 0));
        else {
          const from = since![1];
          // One more stale SubAck (the replaced subscription's) before the answer.
          s.write(subAck(f.correlation, 0));
          s.write(subAck(f.correlation, from));
          for (let i = from + 1; i <= 7; i++) s.write(ev(f.correlation, i));
        }
      }
    });
    cleanup.push(() => node.stop());
    const c = await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 5, max: 20 } });
    cleanup.push(() => c.close());
    const statuses = recordStatus(c);
    const s = c.subscribe('t', { recover: true, pendingLimit: 4 });
    await until(() => s.recovered !== undefined, 'the resume answered');
    const sid = subs[0]![0];
    for (let i = 1; i <= 6; i++) sock!.write(ev(sid, i));
    await until(() => s.pending === 4 && s.behind, 'behind after e4');
    const app = reader(s, 300);
    await app.read(1);
    // A SubAck the client asked nothing for (a stale one of the first SUB), then a live event: still behind, dropped.
    sock!.write(subAck(sid, 0));
    sock!.write(ev(sid, 7));
    await c.flush();
    expect(s.behind).toBe(true);
    await app.read();
    // Before: [e1, e2, e3, e4, e7, e5, e6, e7]: the stale SubAck let e7 in past e5 and e6 (and reset the position, so
    // e7 came twice); without a catch-up reading them again, e5 and e6 were skipped for good.
    expect(app.got).toEqual(events(1, 7));
    expect(subs[1]).toEqual([sid, ['E', 4]]);
    expect(recoveries(statuses)).toEqual([true]);
  });
});

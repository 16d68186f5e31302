/**
 * A `recover` subscription read with the async iterator that falls behind
 * (pendingLimit). The SDK dropped events past the limit, as for any
 * subscription, but moved the subscription's position past them and kept
 * `recovered` true: neither the app nor a resume after a reconnect could
 * tell that history held events the app never saw (review of the
 * twenty-first session: 16 of 21 dropped, the position at 21, recovered
 * true through two reconnects). A resuming subscription drops nothing now:
 * its position is the last event handed over, and once the consumer has
 * room it subscribes again from there (history is its buffer).
 */
import { describe, expect, it } from 'vitest';
import { nodeKit, ownRedisServers, sleep, until, url } from '@meshbus/testkit';
import { connect, type Msg, type Subscription } from '../src/index.js';

const fx = nodeKit();
const redis = ownRedisServers();

/** A reader of `s` that reads until nothing came for a second; a next() that lost its race is kept for the next read. */
function reader(s: Subscription): { got: string[]; read(): Promise<void> } {
  const it = s[Symbol.asyncIterator]();
  let next = it.next();
  const got: string[] = [];
  return {
    got,
    async read() {
      for (let k = 0; k < 200; k++) {
        const m = await Promise.race([next, sleep(1000).then(() => undefined)]);
        if (!m || m.done) return;
        next = it.next();
        got.push(Buffer.from((m.value as Msg).data).toString());
      }
    },
  };
}

const events = (from: number, to: number): string[] => [...Array(to - from + 1).keys()].map((i) => `e${from + i}`);

describe('a resuming subscription whose consumer falls behind', () => {
  it('drops nothing: it catches up from history once the consumer has room, in order, with no duplicate', async (ctx) => {
    const r = await redis.start(ctx);
    const n = await fx.node({ durable: { redis: r.url, prefix: 'rsi1:', topics: [{ pattern: 'h.>', history: { size: 1000 } }] } });
    const pub = fx.track(await connect(url(n)));
    const c = fx.track(await connect(url(n)));
    const s = c.subscribe('h.t', { recover: true, pendingLimit: 5 });
    await c.flush();
    await until(() => s.recovered !== undefined, 'the resume answered');
    const offsets: number[] = [];
    for (let i = 1; i <= 40; i++) offsets.push((await pub.publish('h.t', `e${i}`, { ack: true }))!.offset);
    await c.flush();
    // Before: 35 dropped, the position at e40's offset, recovered true.
    expect({ dropped: s.dropped, position: s.position?.offset, recovered: s.recovered }).toEqual({ dropped: 0, position: offsets[4], recovered: true });
    const app = reader(s);
    await app.read();
    expect(app.got).toEqual(events(1, 40));
    expect({ dropped: s.dropped, position: s.position?.offset }).toEqual({ dropped: 0, position: offsets[39] });
    // Live again: the next one comes at once.
    await pub.publish('h.t', 'e41', { ack: true });
    await app.read();
    expect(app.got.slice(40)).toEqual(['e41']);
  }, 30_000);

  it('across a reconnect: the resume starts after the last event handed over', async (ctx) => {
    const r = await redis.start(ctx);
    const durable = { redis: r.url, prefix: 'rsi2:', topics: [{ pattern: 'h.>', history: { size: 1000 } }] };
    const a = await fx.node({ durable, drainTimeout: 2000 });
    const b = await fx.node({ durable });
    const pub = fx.track(await connect(url(b)));
    const c = fx.track(await connect([url(a), url(b)], { reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
    const s = c.subscribe('h.t', { recover: true, pendingLimit: 5 });
    await c.flush();
    await until(() => s.recovered !== undefined, 'the resume answered');
    for (let i = 1; i <= 20; i++) await pub.publish('h.t', `e${i}`, { ack: true });
    await c.flush();
    await a.shutdown();
    await until(() => c.isConnected, 'reconnected');
    const app = reader(s);
    await app.read();
    // Before: e1..e5, then nothing (the resume started after e20).
    expect(app.got).toEqual(events(1, 20));
    expect(s.recovered).toBe(true);
  }, 30_000);
});

/**
 * What a status listener does while the client attaches a new connection
 * (review of the twenty-first session, replaying client lifecycle bugs).
 * An outbox entry the new node refuses is told by an 'error' status; a
 * publish made in that listener went to the outbox (the connection was not
 * live yet) after the outbox had been taken, and stayed there while the
 * client was connected: sent at the next reconnect behind later events, or
 * discarded at close. A close() in that listener reported `unsent: 0` while
 * the closed client held the entries behind the refused one. Now refusals
 * are told once the connection is live and nothing taken is held aside.
 */
import { describe, expect, it } from 'vitest';
import { nodeKit, until, url } from '@meshbus/testkit';
import { connect, type Status } from '../src/index.js';
import { nextStatus } from './helpers.js';

const fx = nodeKit();

/** Node a (default limits) the client starts on, node b (maxPayload 1000) it fails over to, a subscriber on b. */
async function setup() {
  const a = await fx.node({});
  const b = await fx.node({ maxPayload: 1000 });
  const watch = fx.track(await connect(url(b)));
  const got: string[] = [];
  watch.subscribe('app.>', { callback: (m) => void got.push(m.topic) });
  await watch.flush();
  const c = fx.track(await connect([url(a), url(b)], { reconnectBackoff: { base: 20, max: 50 }, randomize: false }));
  return { a, b, c, got };
}

/**
 * Calls `publish` in the client's 'disconnected' listener, while it is
 * between connections. Polling `isConnected` can miss that moment: after a
 * drain's GOODBYE the client reconnects at once.
 */
const publishWhenDisconnected = (c: Parameters<typeof nextStatus>[0], publish: () => void) =>
  nextStatus(c, (s) => s.type === 'disconnected' && (publish(), true));

describe('status listeners during the attach of a new connection', () => {
  it("a publish made in the listener of an outbox entry's refusal goes out on that connection, after what waited", async () => {
    const { a, c, got } = await setup();
    c.on('status', (s) => {
      if (s.type === 'error' && s.entry) c.publish('app.deadletter', 'x');
    });
    const published = publishWhenDisconnected(c, () => {
      c.publish('app.big', new Uint8Array(5000));
      c.publish('app.small', 'y');
    });
    await a.close();
    await published;
    await until(() => c.isConnected, 'reconnected to b');
    await c.flush();
    await until(() => got.includes('app.deadletter'), 'the listener publish delivered', 3000).catch(() => undefined);
    // Before: ['app.small'] and outboxCount 1 while connected.
    expect({ got, outbox: c.outboxCount }).toEqual({ got: ['app.small', 'app.deadletter'], outbox: 0 });
  });

  it('a close() in that listener counts every entry not sent as unsent, and the closed client holds none', async () => {
    const { a, c } = await setup();
    let closed: Extract<Status, { type: 'closed' }> | undefined;
    c.on('status', (s) => {
      if (s.type === 'error' && s.entry) void c.close();
      if (s.type === 'closed') closed = s;
    });
    const published = publishWhenDisconnected(c, () => {
      c.publish('app.big', new Uint8Array(5000));
      for (let i = 0; i < 5; i++) c.publish('app.small', String(i));
    });
    await a.close();
    await published;
    await until(() => closed !== undefined, 'closed');
    const sent = 5 - (closed?.unsent ?? 0);
    // Before: unsent 0 with 5 entries still held by the closed client (none sent).
    expect({ unsent: closed?.unsent, held: c.outboxCount }).toEqual({ unsent: 5 - sent, held: 0 });
  });
});

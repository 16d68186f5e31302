/**
 * Liveness over a slow link carrying a backlog, replayed from MQTT clients'
 * keepalive bug reports: a client that only receives was disconnected by the
 * broker (MQTT.js "Client times out every 96 seconds",
 * https://github.com/mqttjs/MQTT.js/issues/1861; Paho "disconnect while
 * receiving large payload", https://github.com/eclipse-paho/paho.mqtt.java/issues/135),
 * and a client sending large messages declared its own connection lost
 * while its PING waited behind them
 * (https://github.com/eclipse-paho/paho.mqtt.java/issues/87). A real node,
 * SDK clients, and a loopback proxy that carries one direction at 1 MB/s.
 * Both failed before: the node closed the reading subscriber as stale
 * (MB_ERR_STALE_CONNECTION in its log; the subscriber saw the connection
 * close after 29 of 30 events), and the publisher's client closed itself
 * (MB_ERR_STALE_CONNECTION) after 9 of 30 reached the subscriber.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Fixture, until, url } from '@meshbus/testkit';
import { connect, type Client, type ClientOptions, type Status } from '../src/index.js';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { fakeTcpNode, fakeWelcome, nextStatus, recordStatus, slowLink, tcpProxy } from './helpers.js';

const fx = new Fixture();
afterEach(() => fx.teardown());

const EVENTS = 30;
const PAYLOAD = new Uint8Array(100 * 1024);
const closings = (st: Status[]): Status[] => st.filter((s) => s.type === 'disconnected' || s.type === 'closed');

/** EVENTS events published at once over a 1 MB/s upload (3 s) by a client with `pings`, toward a node with `nodePings`; `got`: delivered. */
async function uploadAtOneMBps(nodePings: { pingInterval: number; maxPingsOut?: number }, pings: ClientOptions): Promise<{ pub: Client; st: Status[]; got: () => number }> {
  const n = await fx.node(nodePings);
  const { port } = await slowLink(fx, n.port, 'up', 1_000_000);
  const sub = fx.track(await connect(url(n)));
  let got = 0;
  sub.subscribe('big', { callback: () => void got++ });
  await sub.flush();
  const pub = fx.track(await connect(`127.0.0.1:${port}`, { reconnect: false, ...pings }));
  const st = recordStatus(pub);
  for (let i = 0; i < EVENTS; i++) pub.publish('big', PAYLOAD);
  return { pub, st, got: () => got };
}

describe('a backlog of 3 MB over a 1 MB/s link (3 s), pings every 250 ms, 3 unanswered make a connection stale', () => {
  it('a subscriber that reads it all the time is not closed as stale by the node (it sent nothing, and the node\'s PINGs waited behind the backlog)', async () => {
    const n = await fx.node({ pingInterval: 250, maxPingsOut: 3 });
    const { port } = await slowLink(fx, n.port, 'down', 1_000_000);
    const sub = fx.track(await connect(`127.0.0.1:${port}`, { reconnect: false, maxPingOut: 3 }));
    const st = recordStatus(sub);
    let got = 0;
    sub.subscribe('big', { callback: () => void got++ });
    await sub.flush();
    const pub = fx.track(await connect(url(n)));
    for (let i = 0; i < EVENTS; i++) pub.publish('big', PAYLOAD);
    await until(() => got === EVENTS || sub.isClosed, 'all events or a close', 15_000);
    expect(closings(st)).toEqual([]);
    expect(got).toBe(EVENTS);
  });

  it('a publisher whose PINGs wait behind its own unsent events does not declare its connection stale', async () => {
    const { pub, st, got } = await uploadAtOneMBps({ pingInterval: 250, maxPingsOut: 3 }, { maxPingOut: 3 });
    await until(() => got() === EVENTS || pub.isClosed, 'all events or a close', 15_000);
    expect(closings(st)).toEqual([]);
    expect(got()).toBe(EVENTS);
  });
});

describe('a publisher pinging faster than its node, behind its own upload (review of 2026-12-04)', () => {
  // The review: 1 GB at a 500 ms ping against a node at 20 s: MB_ERR_STALE_CONNECTION at 1.5 s, node alive and reading.
  it('is not declared stale while the node reads the 3 MB at 1 MB/s and sends its keepalives', async () => {
    const { pub, st, got } = await uploadAtOneMBps({ pingInterval: 2000 }, { pingInterval: 150, maxPingOut: 2 });
    await until(() => got() === EVENTS || pub.isClosed, 'all events or a close', 15_000);
    // Before: stale at ~0.45 s, a few of the 30 delivered.
    expect(closings(st)).toEqual([]);
    expect(got()).toBe(EVENTS);
  });

  it('still finds a frozen link stale once the node has been silent (maxPingOut + 1) node intervals', async () => {
    const n = await fx.node({ pingInterval: 500 });
    const proxy = await tcpProxy(n.port);
    fx.defer(() => proxy.close());
    const c = fx.track(await connect(`127.0.0.1:${proxy.port}`, { reconnect: false, pingInterval: 100, maxPingOut: 2 }));
    const dead = nextStatus(c, (s) => s.type === 'disconnected', 10_000);
    proxy.freeze();
    const started = Date.now();
    // Megabytes the frozen link never takes: the client's output stays backed up.
    for (let i = 0; i < 60; i++) c.publish('big', PAYLOAD);
    const s = await dead;
    expect(s).toMatchObject({ type: 'disconnected', error: { code: 'MB_ERR_STALE_CONNECTION' } });
    // (maxPingOut + 1) × 500 ms of silence, plus a tick or two.
    expect(Date.now() - started).toBeLessThan(8000);
  });

  it('still finds a node that sends keepalives but never reads nor answers', async () => {
    // A hostile or broken node (or a middlebox passing one direction): WELCOME (200 ms), then it reads nothing and PINGs every 150 ms.
    const timers: ReturnType<typeof setInterval>[] = [];
    const hostile = await fakeTcpNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      s.write(fakeWelcome([], 200));
      s.pause();
      timers.push(setInterval(() => s.write(encodeFrame({ type: FrameType.PING, correlation: 1 })), 150));
    });
    fx.defer(async () => {
      for (const t of timers) clearInterval(t);
      await hostile.stop();
    });
    const c = fx.track(await connect(`127.0.0.1:${hostile.port}`, { reconnect: false, pingInterval: 100, maxPingOut: 2 }));
    const dead = nextStatus(c, (s) => s.type === 'disconnected' || s.type === 'closed', 15_000);
    const started = Date.now();
    for (let i = 0; i < 100; i++) c.publish('big', PAYLOAD);
    // The first version of this rule: never (any byte received counted as an answer while backed up).
    expect(await dead).toMatchObject({ error: { code: 'MB_ERR_STALE_CONNECTION' } });
    // Its PING unanswered for ten times (maxPingOut + 1) x 200 ms (6 s), plus a tick or two.
    expect(Date.now() - started).toBeLessThan(9000);
  });

  it('a node that never answers PINGs does not make the client keep every PING it sent (1,000,000 timed-out flushes kept ~70 MB)', async () => {
    const silent = await fakeTcpNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(fakeWelcome([], 60_000));
    });
    fx.defer(() => silent.stop());
    const c = fx.track(await connect(`127.0.0.1:${silent.port}`, { reconnect: false, pingInterval: 60_000 }));
    const flushes = Array.from({ length: 20_000 }, () => c.flush(1).catch(() => 'timed out'));
    expect(new Set(await Promise.all(flushes))).toEqual(new Set(['timed out']));
    // What the connection keeps of unanswered PINGs (internal: where each ends in its output).
    const kept = (c as unknown as { e: { conn: { pingEnds: Map<number, unknown> } } }).e.conn.pingEnds.size;
    expect(kept).toBeLessThanOrEqual(1024);
  });

  it('a checkLiveness() probe mid-upload over a slow link is answered by the wait, not failed at its 2 s deadline', async () => {
    const { pub, st, got } = await uploadAtOneMBps({ pingInterval: 2000 }, { pingInterval: 150, maxPingOut: 2 });
    setTimeout(() => pub.checkLiveness(), 500);
    await until(() => got() === EVENTS || pub.isClosed, 'all events or a close', 15_000);
    // Before: stale 2 s after the probe, the node alive and reading.
    expect(closings(st)).toEqual([]);
    expect(got()).toBe(EVENTS);
  });
});

describe('the keepalive does not hide a dead connection (a guard: it held before too)', () => {
  it('a client that keeps publishing into a half-open connection still finds it stale within a few intervals (MQTT.js #1855: keepalive shifted by every send)', async () => {
    const n = await fx.node({ pingInterval: 200 });
    const proxy = await tcpProxy(n.port);
    fx.defer(() => proxy.close());
    const c = fx.track(await connect(`127.0.0.1:${proxy.port}`, { reconnect: false }));
    const dead = nextStatus(c, (s) => s.type === 'disconnected', 5000);
    proxy.freeze();
    const timer = setInterval(() => {
      if (!c.isClosed) c.publish('x', 'y');
    }, 20);
    const s = await dead.finally(() => clearInterval(timer));
    expect(s).toMatchObject({ type: 'disconnected', error: { code: 'MB_ERR_STALE_CONNECTION' } });
  });
});

// Issue #14 leftover (client side): the node applies `slow` per subscription.
// A client whose 'drop' subscription cannot keep up sees the node's drop
// reports on that subscription (sub.nodeDropped, a 'slow-consumer' status from
// the node naming the sid) and keeps its connection and its 'disconnect'
// subscription. A real node, and a proxy that stops reading toward the client.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Client, type Status } from '../src/index.js';
import { Fixture, until, url } from '@meshbus/testkit';

const fx = new Fixture();
afterEach(() => fx.teardown());

/** A TCP proxy whose node→client direction can be held (it stops reading from the node) and released. */
async function holdingProxy(target: number): Promise<{ port: number; hold(): void; release(): void }> {
  const toNode: net.Socket[] = [];
  const server = net.createServer((a) => {
    const b = net.connect(target, '127.0.0.1');
    toNode.push(b);
    a.on('data', (d) => b.write(d));
    b.on('data', (d) => a.write(d));
    const end = (): void => {
      a.destroy();
      b.destroy();
    };
    a.on('close', end).on('error', end);
    b.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fx.closers.push(
    () =>
      new Promise<void>((r) => {
        for (const b of toNode) b.destroy();
        server.close(() => r());
      }),
  );
  return {
    port: (server.address() as net.AddressInfo).port,
    hold: () => toNode.forEach((b) => b.pause()),
    release: () => toNode.forEach((b) => b.resume()),
  };
}

describe("per-subscription slow-consumer policy, as the client sees it", () => {
  it("a 'drop' subscription that falls behind is told how many events the node dropped for it; the connection and the 'disconnect' subscription go on", async () => {
    const n = await fx.node({ maxPending: 256 * 1024 });
    const proxy = await holdingProxy(n.port);
    const c: Client = fx.track(await connect(url(proxy.port), { reconnectBackoff: { base: 20, max: 100 } }));
    const statuses: Status[] = [];
    c.on('status', (s) => statuses.push(s));
    let feed = 0;
    const ctl: string[] = [];
    const dropSub = c.subscribe('feed', { slow: 'drop', callback: () => feed++ });
    c.subscribe('ctl', { callback: (m) => ctl.push(m.string()) });
    await c.flush();
    proxy.hold();
    const pub = fx.track(await connect(url(n)));
    const total = 4000;
    const payload = new Uint8Array(4096);
    for (let i = 0; i < total; i++) pub.publish('feed', payload);
    await pub.flush(20_000);
    await until(() => n.stats.dropped.slow > 0, 20_000);
    proxy.release();
    for (let i = 0; i < 5; i++) pub.publish('ctl', `c${i}`);
    await pub.flush();
    await until(() => ctl.length === 5 && feed + dropSub.nodeDropped === total, 20_000);
    expect(dropSub.nodeDropped).toBe(n.stats.dropped.slow);
    const reports = statuses.filter((s): s is Extract<Status, { type: 'slow-consumer'; source: 'node' }> => s.type === 'slow-consumer' && s.source === 'node');
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((s) => s.error.code === 'MB_ERR_EVENTS_DROPPED' && s.sid === dropSub.sid && s.pattern === 'feed')).toBe(true);
    expect(reports.reduce((a, s) => a + (s.dropped ?? 0), 0)).toBe(dropSub.nodeDropped);
    expect(c.isConnected).toBe(true);
    expect(dropSub.isClosed).toBe(false);
    expect(statuses.some((s) => s.type === 'disconnected')).toBe(false);
  });
});

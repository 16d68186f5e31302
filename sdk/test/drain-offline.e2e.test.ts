/**
 * drain() made while the client is disconnected: a graceful stop must not
 * discard what the client accepted offline. It closed at once and dropped
 * the outbox (the `closed` event counted it as unsent); now it waits for the
 * next connection, which sends what waited first, then drains as usual, or
 * ends when the client closes. Over TCP and the node's WebSocket gateway,
 * each through a proxy that refuses connections while the "network" is down.
 */
import { describe, expect, it } from 'vitest';
import { nodeKit, sleep, until, url } from '@meshbus/testkit';
import { ClientError, connect, type Status } from '../src/index.js';
import { downableEndpoints } from './helpers.js';

const fx = nodeKit();

/** A node, an observer of `dr.>` on it, and its TCP and WebSocket ports behind proxies refusing while `net.down`. */
async function setup(): Promise<{ observed: string[] } & Awaited<ReturnType<typeof downableEndpoints>>> {
  const n = await fx.node();
  const obs = fx.track(await connect(url(n)));
  const observed: string[] = [];
  obs.subscribe('dr.>', { callback: (m) => observed.push(`${m.topic} ${m.string()}`) });
  await obs.flush();
  return { observed, ...(await downableEndpoints(fx, n)) };
}

describe('drain() while disconnected', () => {
  it('waits for the next connection and delivers what was published offline, then closes with nothing unsent', async () => {
    const { observed, net, eps } = await setup();
    for (const ep of eps) {
      const c = fx.track(await connect(ep.url, { reconnectBackoff: { base: 20, max: 50 } }));
      const statuses: Status[] = [];
      c.on('status', (s) => statuses.push(s));
      const sub = c.subscribe(`dr.${ep.name}.in`);
      await c.flush();
      net.down = true;
      ep.cut();
      await until(() => !c.isConnected, 'the connection lost');
      c.publish(`dr.${ep.name}`, 'a');
      c.publish(`dr.${ep.name}`, 'b');
      let drained = false;
      const d = c.drain().then(() => (drained = true));
      await sleep(150);
      expect(drained).toBe(false);
      // Draining: a subscription cannot be made any more, a publish still can.
      expect(() => c.subscribe('dr.late')).toThrow(ClientError);
      c.publish(`dr.${ep.name}`, 'c');
      net.down = false;
      await d;
      await until(() => observed.filter((o) => o.startsWith(`dr.${ep.name} `)).length >= 3, 'the offline events');
      expect(observed.filter((o) => o.startsWith(`dr.${ep.name} `))).toEqual([`dr.${ep.name} a`, `dr.${ep.name} b`, `dr.${ep.name} c`]);
      expect(c.isClosed).toBe(true);
      expect(statuses.find((s) => s.type === 'closed')).toEqual({ type: 'closed', unsent: 0 });
      // The subscription made before the drain ended, and was not made again on the new connection.
      expect(sub.isClosed).toBe(true);
    }
  });

  it('ends when the client is closed before a connection comes back (the outbox then counted as unsent)', async () => {
    const { net, eps } = await setup();
    for (const ep of eps) {
      const c = fx.track(await connect(ep.url, { reconnectBackoff: { base: 20, max: 50 } }));
      let closed: Status | undefined;
      c.on('status', (s) => s.type === 'closed' && (closed = s));
      net.down = true;
      ep.cut();
      await until(() => !c.isConnected, 'the connection lost');
      c.publish(`dr.${ep.name}`, 'x');
      const d = c.drain();
      await sleep(100);
      await c.close();
      await d;
      expect(closed).toEqual({ type: 'closed', unsent: 1 });
      net.down = false;
    }
  });
});

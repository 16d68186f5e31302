/**
 * drain() and what waits for the node's answer (review of the fourteenth
 * session's offline drain). A request made offline was sent by the
 * connection the drain waited for and rejected at the close (the drain had
 * unsubscribed the inbox): the responder did the work, the caller saw a
 * failure. An acked publish was stored and delivered, and its promise
 * rejected MB_ERR_CONNECTION_CLOSED: the drain closed after the PONG, before
 * the ACK (the node answers once Redis has the event). Over TCP and the
 * node's WebSocket gateway, through a proxy that refuses while "down".
 */
import { describe, expect, it } from 'vitest';
import { nodeKit, ownRedisServers, sleep, until, url } from '@meshbus/testkit';
import type { NodeOptions } from '@meshbus/core';
import { connect, type ClientError } from '../src/index.js';
import { downableEndpoints } from './helpers.js';

const fx = nodeKit();
const redis = ownRedisServers();

type Outcome = { ok: string } | { err: string; message: string };
const outcome = <T>(p: Promise<T>, ok: (v: T) => string): Promise<Outcome> =>
  p.then(
    (v) => ({ ok: ok(v) }),
    (e: ClientError) => ({ err: e.code, message: e.message }),
  );

/** A node (durable for `o.>` when `durable`), its TCP and WebSocket ports behind proxies refusing while `net.down`. */
async function setup(durable?: NodeOptions['durable']) {
  const n = await fx.node(durable ? { durable } : {});
  return { n, ...(await downableEndpoints(fx, n)) };
}

describe('drain() and answers the node still owes', () => {
  it('a request made offline is rejected unsent when drain() starts, not sent to a responder whose reply is dropped', async () => {
    const { n, net, eps } = await setup();
    const responder = fx.track(await connect(url(n)));
    let served = 0;
    responder.subscribe('svc', { callback: (m) => (served++, m.respond('r')) });
    await responder.flush();
    for (const ep of eps) {
      const c = fx.track(await connect(ep.url, { reconnectBackoff: { base: 20, max: 50 } }));
      net.down = true;
      ep.cut();
      await until(() => !c.isConnected, 'the connection lost');
      const rep = outcome(c.request('svc', 'q', { timeout: 5000 }), (m) => m.string());
      const d = c.drain();
      await sleep(100);
      net.down = false;
      await d;
      await responder.flush();
      // Before: { err: MB_ERR_CONNECTION_CLOSED 'client is closed' } with served 1 (sent on the new connection, reply dropped).
      expect(await rep, ep.name).toMatchObject({ err: 'MB_ERR_CONNECTION_CLOSED', message: expect.stringMatching(/draining/) });
      expect(served, ep.name).toBe(0);
    }
  });

  it('an acked publish made before or during drain(), online or offline, gets its ACK before the close', async (ctx) => {
    const r = await redis.start(ctx);
    const { n, net, eps } = await setup({ redis: r.url, prefix: 'drainack:', topics: [{ pattern: 'o.>', history: { size: 100 } }] });
    const obs = fx.track(await connect(url(n)));
    const got: string[] = [];
    obs.subscribe('o.>', { callback: (m) => got.push(m.topic) });
    await obs.flush();
    for (const ep of eps) {
      const online = fx.track(await connect(ep.url));
      const before = outcome(online.publish(`o.${ep.name}.before`, 'a', { ack: true })!, () => 'acked');
      const d1 = online.drain();
      const during = outcome(online.publish(`o.${ep.name}.during`, 'b', { ack: true })!, () => 'acked');
      await d1;
      const c = fx.track(await connect(ep.url, { reconnectBackoff: { base: 20, max: 50 } }));
      net.down = true;
      ep.cut();
      await until(() => !c.isConnected, 'the connection lost');
      const offline = outcome(c.publish(`o.${ep.name}.offline`, 'c', { ack: true })!, () => 'acked');
      const d2 = c.drain();
      await sleep(100);
      net.down = false;
      await d2;
      // Before: each { err: MB_ERR_CONNECTION_CLOSED } although stored and delivered.
      expect({ before: await before, during: await during, offline: await offline }, ep.name).toEqual({ before: { ok: 'acked' }, during: { ok: 'acked' }, offline: { ok: 'acked' } });
      await until(() => got.filter((t) => t.startsWith(`o.${ep.name}.`)).length >= 3, 'the acked events delivered');
      expect(c.isClosed && online.isClosed).toBe(true);
    }
  });

  it("drain() while the app's own suspend() holds, or a suspend() during an offline drain, settles with the outbox counted unsent", async () => {
    const { net, eps } = await setup();
    for (const ep of eps) {
      for (const order of ['suspend, then drain', 'drain, then suspend'] as const) {
        const c = fx.track(await connect(ep.url, { reconnectBackoff: { base: 20, max: 50 } }));
        let closed: unknown;
        c.on('status', (s) => s.type === 'closed' && (closed = s));
        if (order === 'suspend, then drain') c.suspend();
        else {
          net.down = true;
          ep.cut();
        }
        await until(() => !c.isConnected, 'the connection lost');
        c.publish('dr.x', 'x');
        let drained = false;
        const d = c.drain().then(() => (drained = true));
        if (order === 'drain, then suspend') {
          await sleep(50);
          c.suspend();
        }
        // Before: never settled (no connection comes until resume()); a Node process exited with the drain
        // pending and no `closed` event (exit code 13 at a top-level await).
        await until(() => drained, `${ep.name}, ${order}: drain() settled`, 2000);
        await d;
        expect(closed, `${ep.name}, ${order}`).toEqual({ type: 'closed', unsent: 1 });
        net.down = false;
      }
    }
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { WsGateway } from '@meshbus/core/ws';
import { Fixture, sleep, until, url } from '@meshbus/testkit';
import { connect, type Status } from '../src/index.js';
import { recordStatus } from './helpers.js';

/**
 * The thirty-second session's review of the SDK, over TCP and a node's
 * WebSocket gateway (real nodes on loopback):
 *
 * 1. A SUB the node refused with a code the client did not list as a
 *    refusal (`MB_ERR_BAD_BODY`, `MB_ERR_OUT_OF_RANGE`) left the
 *    subscription open for ever: `sub.closed` pending, a `for await` hung,
 *    only an `error` status said so. Now every non-fatal ERROR with a live
 *    subscription's sid ends it, but for the notices SPEC 10.3 lists.
 * 2. Its attack: a rule "every ERROR with a live sid ends it" ended live
 *    subscriptions on ERRORs whose correlation is another id space's (a
 *    reply's PUB carries the requester's request id): refusals are the
 *    codes SPEC 10.3 lists.
 * 3. A plain subscription's events in flight at its unsubscribe() (the node
 *    sends them by topic, sid 0) were told as `no-subscriber` with sid 0 and
 *    not counted in `sub.dropped`; they now count against it.
 */
const fx = new Fixture();
afterEach(() => fx.teardown());

async function servers(): Promise<Array<[string, string]>> {
  const node = await fx.node();
  const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
  fx.defer(() => gw.close());
  return [
    ['TCP', url(node.port)],
    ['WebSocket', `ws://127.0.0.1:${gw.port}`],
  ];
}

/** `p`, or 'pending' when it has not settled within `ms`. */
function settledWithin<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, sleep(ms).then(() => 'pending' as const)]);
}

describe('a SUB the node refuses ends its subscription whatever the code', () => {
  it('a `since` past the node bounds (MB_ERR_OUT_OF_RANGE): sub.closed resolves with it, the iterator throws it', async () => {
    for (const [via, server] of await servers()) {
      const c = fx.track(await connect(server));
      const statuses = recordStatus(c);
      // 65 characters: the node's limit for an epoch is 64 (core client-limits); the client checks kinds only.
      const sub = c.subscribe('zz.u', { since: { epoch: 'e'.repeat(65), offset: 1 } });
      const closed = await settledWithin(sub.closed, 5_000);
      expect(closed === 'pending' ? 'pending' : closed?.code, via).toBe('MB_ERR_OUT_OF_RANGE');
      expect(sub.isClosed, via).toBe(true);
      const iterated = await settledWithin(
        (async () => {
          for await (const m of sub) void m;
          return 'ended without an error';
        })().catch((e: { code?: string }) => e.code),
        2_000,
      );
      expect(iterated, via).toBe('MB_ERR_OUT_OF_RANGE');
      // The client goes on: another subscription on the same connection receives.
      const got: string[] = [];
      c.subscribe('zz.ok', { callback: (m) => got.push(m.string()) });
      await c.flush();
      c.publish('zz.ok', 'still here');
      await until(() => got.length === 1, `${via}: delivery after the refusal`);
      expect(statuses.filter((s) => s.type === 'closed' || s.type === 'disconnected'), via).toEqual([]);
      await c.close();
    }
  });

  it('a refused SUB of a queue-group member ends it too, and a fresh SUB of the same pattern works', async () => {
    for (const [via, server] of await servers()) {
      const c = fx.track(await connect(server));
      const bad = c.subscribe('jobs.>', { queue: 'g', since: { epoch: 'e'.repeat(65), offset: 0 } });
      expect((await settledWithin(bad.closed, 5_000)) === 'pending', via).toBe(false);
      const got: string[] = [];
      c.subscribe('jobs.>', { queue: 'g', callback: (m) => got.push(m.string()) });
      await c.flush();
      c.publish('jobs.1', 'x');
      await until(() => got.length === 1, `${via}: the group's delivery`);
      await c.close();
    }
  });
});

describe('an ERROR whose correlation only equals a sid leaves that subscription', () => {
  it("a rate limit on a responder's reply (its PUB carries the requester's id) does not end the responder's subscription", async () => {
    const node = await fx.node({ publishRate: 2, publishBurst: 2 });
    const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
    fx.defer(() => gw.close());
    for (const server of [url(node.port), `ws://127.0.0.1:${gw.port}`]) {
      const svc = fx.track(await connect(server));
      const cli = fx.track(await connect(server));
      const statuses = recordStatus(svc);
      // Sids 1, 2, 3 on the responder; the requester's request ids are as small.
      const plain = [svc.subscribe('other.a'), svc.subscribe('other.b')];
      const sub = svc.subscribe('svc', { callback: (m) => { for (let k = 0; k < 10; k++) m.respond(`r${k}`); } });
      await svc.flush();
      for (let i = 0; i < 4; i++) await cli.request('svc', 'q', { timeout: 1000 }).catch(() => undefined);
      await until(() => statuses.some((s) => s.type === 'error' && s.error.code === 'MB_ERR_RATE_LIMITED'), `${server}: the rate limit told`);
      // Was: a subscription whose sid equalled a request id ended with MB_ERR_RATE_LIMITED, and the node kept routing to it.
      expect([...plain, sub].map((s) => s.isClosed), server).toEqual([false, false, false]);
      await svc.close();
      await cli.close();
    }
  });
});

describe("a plain subscription's events in flight at unsubscribe() count against it", () => {
  it('dropped statuses carry its sid and the reason unsubscribed; sub.dropped counts them', async () => {
    for (const [via, server] of await servers()) {
      const a = fx.track(await connect(server));
      const b = fx.track(await connect(server));
      const statuses = recordStatus(a);
      let handled = 0;
      const sub = a.subscribe('uc.t', {
        callback: () => {
          handled++;
          sub.unsubscribe();
        },
      });
      await a.flush();
      for (let i = 0; i < 5; i++) b.publish('uc.t', `e${i}`);
      await b.flush();
      const dropped = (): Array<Extract<Status, { type: 'dropped' }>> => statuses.filter((s): s is Extract<Status, { type: 'dropped' }> => s.type === 'dropped');
      await until(() => handled + dropped().length === 5, `${via}: every event handled or told dropped`);
      expect(handled, via).toBe(1);
      expect(
        dropped().map((s) => [s.reason, s.sid, s.pattern]),
        via,
      ).toEqual(Array.from({ length: 4 }, () => ['unsubscribed', sub.sid, 'uc.t']));
      expect(sub.dropped, via).toBe(4);
      expect(a.stats().dropped, via).toBe(4);
      await a.close();
      await b.close();
    }
  });
});

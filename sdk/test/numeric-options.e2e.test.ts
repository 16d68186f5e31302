import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, type MeshNode } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { Fixture, sleep, url } from '@meshbus/testkit';
import { ClientError, MemoryOutbox, connect, type Client, type ConnectOptions } from '../src/index.js';
import { connect as browserConnect, type BrowserConnectOptions } from '../src/browser.js';
import type { WebSocketConstructor } from '../src/ws-transport.js';
import { nextStatus } from './helpers.js';

/**
 * The SDK's numeric options (sdk/README "Options", src/option-checks.ts).
 * `maxReconnectAttempts: -1` is NATS's "for ever" (nats.js); the SDK took it
 * as "no attempt": connect() failed at once with "gave up after 0 attempts",
 * and a client that lost its node closed at once. Other values outside an
 * option's range were taken as given, several switching the feature off
 * without a word (NaN limits: no bound; NaN maxPingOut: no liveness; a
 * negative backoff: no backoff). Real nodes on loopback, through the Node
 * entry (TCP) and the browser entry (a node's WebSocket gateway).
 */
const fx = new Fixture();
afterEach(() => fx.teardown());

const BACKOFF = { base: 20, max: 50 };
const Ws = WebSocket as unknown as WebSocketConstructor;

/** A node with a WebSocket gateway on `wsPort` (0: any), both closed after the test. */
async function wsNode(wsPort = 0, n?: MeshNode): Promise<{ node: MeshNode; gw: WsGateway; ws: string }> {
  const node = n ?? (await fx.node());
  const gw = await new WsGateway(node, { port: wsPort, host: '127.0.0.1' }).listen();
  fx.defer(() => gw.close());
  return { node, gw, ws: `ws://127.0.0.1:${gw.port}` };
}

type Entry = { name: string; connect: (target: { tcp: string; ws: string }, o: ConnectOptions) => Promise<Client> };
const ENTRIES: Entry[] = [
  { name: 'Node entry (TCP)', connect: (t, o) => connect(t.tcp, o) },
  { name: 'browser entry (WebSocket)', connect: (t, o) => browserConnect(t.ws, { WebSocket: Ws, pageLifecycle: false, ...o } as BrowserConnectOptions) },
];

describe('maxReconnectAttempts: -1 is for ever (as in nats.js)', () => {
  it('connect() with waitOnFirstConnect keeps trying until the node comes up (Node entry)', async () => {
    const port = await freePort();
    const pending = connect(url(port), { maxReconnectAttempts: -1, waitOnFirstConnect: true, reconnectBackoff: BACKOFF });
    const outcome = pending.then(
      (c) => fx.track(c),
      (e: unknown) => e,
    );
    // Several rounds of attempts with nothing listening (on the old code, connect() had rejected at the first).
    await sleep(400);
    await fx.node({ port });
    const c = await outcome;
    expect(c).not.toBeInstanceOf(Error);
    expect((c as Client).isConnected).toBe(true);
  });

  it('connect() with waitOnFirstConnect keeps trying until the gateway comes up (browser entry)', async () => {
    const node = await fx.node();
    const wsPort = await freePort();
    const outcome = browserConnect(`ws://127.0.0.1:${wsPort}`, { WebSocket: Ws, pageLifecycle: false, maxReconnectAttempts: -1, waitOnFirstConnect: true, reconnectBackoff: BACKOFF }).then(
      (c) => fx.track(c),
      (e: unknown) => e,
    );
    await sleep(400);
    await wsNode(wsPort, node);
    const c = await outcome;
    expect(c).not.toBeInstanceOf(Error);
    expect((c as Client).isConnected).toBe(true);
  });

  for (const entry of ENTRIES) {
    it(`a client that lost its node reconnects when it returns, however long it takes (${entry.name})`, async () => {
      const n1 = await fx.node();
      const port = n1.port;
      const first = await wsNode(0, n1);
      const wsPort = first.gw.port;
      const c = fx.track(await entry.connect({ tcp: url(port), ws: first.ws }, { maxReconnectAttempts: -1, reconnectBackoff: BACKOFF, ignoreClusterPeers: true }));
      const lost = nextStatus(c, (s) => s.type === 'disconnected');
      await first.gw.close();
      await n1.close();
      await lost;
      await sleep(300); // several attempts fail meanwhile
      expect(c.isClosed).toBe(false);
      const back = nextStatus(c, (s) => s.type === 'connected');
      const n2 = await fx.node({ port });
      await wsNode(wsPort, n2);
      await back;
      expect(c.isConnected).toBe(true);
    });
  }
});

/** [option, bad values]: each refused at connect() with MB_ERR_INVALID_ARGUMENT naming the option. */
const BAD: Array<[string, (v: number) => ConnectOptions, number[]]> = [
  ['maxReconnectAttempts', (v) => ({ maxReconnectAttempts: v }), [-2, -0.5, 1.5, NaN]],
  ['connectTimeout', (v) => ({ connectTimeout: v }), [0, -1, NaN]],
  ['requestTimeout', (v) => ({ requestTimeout: v }), [0, -1, NaN]],
  ['pingInterval', (v) => ({ pingInterval: v }), [-1, NaN, Infinity]],
  ['wakeTimeout', (v) => ({ wakeTimeout: v }), [0, -1, NaN]],
  ['maxPingOut', (v) => ({ maxPingOut: v }), [0, -1, NaN, Infinity, 1.5]],
  ['reconnectBackoff.base', (v) => ({ reconnectBackoff: { base: v } }), [0, -1, NaN, Infinity]],
  ['reconnectBackoff.max', (v) => ({ reconnectBackoff: { max: v } }), [0, -1, NaN]],
  ['outbox.maxMessages', (v) => ({ outbox: { maxMessages: v } }), [-1, NaN, 2.5]],
  ['outbox.maxBytes', (v) => ({ outbox: { maxBytes: v } }), [-1, NaN]],
];

describe('numeric options outside their range are refused at connect(), before any attempt', () => {
  for (const entry of ENTRIES) {
    it(`every ConnectOptions number (${entry.name})`, async () => {
      const { node, ws } = await wsNode();
      const target = { tcp: url(node), ws };
      let rows = 0;
      for (const [name, make, values] of BAD) {
        for (const v of values) {
          const err = await entry.connect(target, make(v)).then(
            (c) => {
              fx.track(c);
              return undefined;
            },
            (e: unknown) => e,
          );
          expect(err, `${name}: ${v}`).toBeInstanceOf(ClientError);
          expect((err as ClientError).code, `${name}: ${v}`).toBe('MB_ERR_INVALID_ARGUMENT');
          expect((err as ClientError).message, `${name}: ${v}`).toContain(name);
          rows++;
        }
      }
      expect(rows).toBe(33);
      // Refused before any attempt: the node saw no connection.
      expect(node.stats.connectionsTotal).toBe(0);
      // The values that mean "no bound" or "for ever" stay accepted.
      const ok = fx.track(
        await entry.connect(target, { maxReconnectAttempts: Infinity, connectTimeout: Infinity, requestTimeout: Infinity, reconnectBackoff: { base: 10, max: Infinity }, outbox: { maxMessages: Infinity, maxBytes: 0 }, maxPingOut: 1 }),
      );
      expect(ok.isConnected).toBe(true);
    });
  }

  it('subscribe() bounds, flush() and checkLiveness() timeouts, a MemoryOutbox built by hand', async () => {
    const n = await fx.node();
    const c = fx.track(await connect(url(n)));
    for (const [k, v] of [
      ['pendingLimit', -1],
      ['pendingLimit', NaN],
      ['pendingLimit', 0],
      ['pendingBytes', NaN],
      ['pendingBytes', -5],
    ] as const) {
      expect(() => c.subscribe('t', { [k]: v }), `${k}: ${v}`).toThrow(expect.objectContaining({ code: 'MB_ERR_INVALID_ARGUMENT' }) as Error);
    }
    for (const v of [-1, NaN, 0]) {
      await expect(c.flush(v), `flush(${v})`).rejects.toMatchObject({ code: 'MB_ERR_INVALID_ARGUMENT' });
      expect(() => c.checkLiveness(v), `checkLiveness(${v})`).toThrow(expect.objectContaining({ code: 'MB_ERR_INVALID_ARGUMENT' }) as Error);
    }
    // The connection stayed up: a NaN probe deadline had declared it stale at once.
    await c.flush();
    expect(c.isConnected).toBe(true);
    expect(() => new MemoryOutbox({ maxMessages: NaN })).toThrow(expect.objectContaining({ code: 'MB_ERR_INVALID_ARGUMENT' }) as Error);
  });
});

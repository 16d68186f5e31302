import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { WsGateway } from '@meshbus/core/ws';
import { Fixture, sleep, url } from '@meshbus/testkit';
import { connect, durable, type Client, type ConnectOptions } from '../src/index.js';
import { connect as browserConnect, type BrowserConnectOptions } from '../src/browser.js';
import { connect as mobileConnect, type MobileConnectOptions } from '../src/mobile.js';
import type { WebSocketConstructor } from '../src/ws-transport.js';

/**
 * The SDK's non-numeric arguments (src/option-checks.ts; the numbers are
 * numeric-options.e2e.test.ts). An options argument that was not an object,
 * a callback, listener, getToken or durable that was not a function, a codec
 * without encode/decode, a signal that was not one: each was taken and
 * failed later as an untyped TypeError, at the call (`publish(t, p, 'x')`
 * read `'x'.at`, a String method, and went the acked way), at the first event
 * (`callback: 'x'`), or as an uncaught exception from a timer at the next
 * status (`on('status', 'x')`: the process exited at close()). Now each is
 * ClientError MB_ERR_INVALID_ARGUMENT naming the argument, where it is given,
 * through the Node entry (TCP), the browser and the mobile entries (a node's
 * WebSocket gateway). Real nodes on loopback.
 */
const fx = new Fixture();
afterEach(() => fx.teardown());

const Ws = WebSocket as unknown as WebSocketConstructor;
type Target = { tcp: string; ws: string };
type Entry = { name: string; connect: (t: Target, o: unknown) => Promise<Client> };
const ENTRIES: Entry[] = [
  { name: 'Node entry (TCP)', connect: (t, o) => connect(t.tcp, o as ConnectOptions) },
  {
    name: 'browser entry (WebSocket)',
    connect: (t, o) => browserConnect(t.ws, (o === null || typeof o !== 'object' ? o : { WebSocket: Ws, pageLifecycle: false, ...o }) as BrowserConnectOptions),
  },
  { name: 'mobile entry (WebSocket)', connect: (t, o) => mobileConnect(t.ws, (o === null || typeof o !== 'object' ? o : { WebSocket: Ws, ...o }) as MobileConnectOptions) },
];

async function target(): Promise<Target> {
  const node = await fx.node();
  const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
  fx.defer(() => gw.close());
  return { tcp: url(node.port), ws: `ws://127.0.0.1:${gw.port}` };
}

/** What a call ended with: 'ok', or the error's class and code (an untyped error shows as its class and undefined). */
async function outcome(f: () => unknown): Promise<string> {
  try {
    const r = f();
    if (r instanceof Promise) await r;
    return 'ok';
  } catch (e) {
    const err = e as { constructor: { name: string }; code?: string };
    return `${err.constructor.name} ${String(err.code)}`;
  }
}

const REFUSED = 'ClientError MB_ERR_INVALID_ARGUMENT';

describe('non-numeric SDK arguments are checked where they are given', () => {
  for (const entry of ENTRIES) {
    it(`connect options (${entry.name})`, async () => {
      const t = await target();
      const bad: Array<[string, unknown]> = [
        ['options null', null],
        ['options a string', 'x'],
        ['signal', { signal: 'x' }],
        ['reconnectBackoff', { reconnectBackoff: null }],
        ['durable', { durable: 'x' }],
        ['getToken', { getToken: 'x' }],
        ['codec', { codec: 5 }],
        ['outbox', { outbox: 'x' }],
        // Sent in HELLO: refused by the node after a connection (MB_ERR_CONNECT_FAILED) or taken as set.
        ['echo', { echo: 'no' }],
        ['name', { name: 5 }],
        ['token', { token: {} }],
        ['reconnect', { reconnect: 'yes' }],
        ['waitOnFirstConnect', { waitOnFirstConnect: 1 }],
        ['randomize', { randomize: 'no' }],
        ['ignoreClusterPeers', { ignoreClusterPeers: 0 }],
      ];
      const got = [];
      for (const [what, o] of bad) {
        got.push([what, await outcome(async () => fx.track(await entry.connect(t, o)))]);
      }
      expect(got).toEqual(bad.map(([what]) => [what, REFUSED]));
      // Well-formed ones of each kind still connect.
      const c = fx.track(await entry.connect(t, { signal: new AbortController().signal, reconnectBackoff: { base: 20 }, durable, getToken: () => undefined, outbox: false }));
      expect(c.isConnected).toBe(true);
    });
  }

  it('servers that are not strings, and tls that is not an object (Node entry)', async () => {
    const t = await target();
    expect(await outcome(() => connect(5 as unknown as string))).toBe(REFUSED);
    expect(await outcome(() => connect({} as unknown as string))).toBe(REFUSED);
    expect(await outcome(() => connect(t.tcp, { tls: 'x' as unknown as object }))).toBe(REFUSED);
    // The entries' own flags (thirty-second session): taken as truthy or falsy before.
    expect(await outcome(() => connect(t.tcp, { wsDeflate: 'yes' as unknown as boolean }))).toBe(REFUSED);
    expect(await outcome(() => connect(t.tcp, { openTelemetry: 0 as unknown as boolean }))).toBe(REFUSED);
    expect(await outcome(() => browserConnect(t.ws, { WebSocket: Ws, pageLifecycle: 'no' as unknown as boolean }))).toBe(REFUSED);
  });

  for (const entry of ENTRIES) {
    it(`publish, subscribe, request, respond and on (${entry.name})`, async () => {
      const t = await target();
      const c = fx.track(await entry.connect(t, {}));
      const uncaught: unknown[] = [];
      const onUncaught = (e: unknown): void => void uncaught.push(e);
      process.on('uncaughtException', onUncaught);
      fx.defer(() => void process.off('uncaughtException', onUncaught));
      const any = c as unknown as Record<string, (...a: unknown[]) => unknown>;
      const calls: Array<[string, () => unknown]> = [
        ['publish options a string', () => any.publish!.call(c, 'a.b', 'x', 'str')],
        ['publish options null', () => any.publish!.call(c, 'a.b', 'x', null)],
        ['publish codec', () => any.publish!.call(c, 'a.b', 'x', { codec: {} })],
        ['publish at', () => any.publish!.call(c, 'a.b', 'x', { at: 'tomorrow' })],
        ['subscribe callback', () => any.subscribe!.call(c, 'a.>', { callback: 'x' })],
        ['subscribe codec', () => any.subscribe!.call(c, 'a.>', { codec: { encode: 1 } })],
        ['subscribe options null', () => any.subscribe!.call(c, 'a.>', null)],
        ['request replyCodec', () => any.request!.call(c, 'svc', 'x', { replyCodec: 5 })],
        ['request options null', () => any.request!.call(c, 'svc', 'x', null)],
        ['on listener', () => any.on!.call(c, 'status', 'x')],
        // The review of the thirty-second session: each was taken (or threw a TypeError) before.
        ['on an unknown event', () => any.on!.call(c, 'bogus', () => {})],
        ['subscribe since not a position', () => any.subscribe!.call(c, 'a.>', { since: 'bogus' })],
        ['subscribe since.offset a string', () => any.subscribe!.call(c, 'a.>', { since: { epoch: 'e', offset: 'a' } })],
        ['subscribe since.offset Infinity', () => any.subscribe!.call(c, 'a.>', { since: { epoch: 'e', offset: Infinity } })],
        ['subscribe since.offset not a safe integer', () => any.subscribe!.call(c, 'a.>', { since: { epoch: 'e', offset: 2 ** 60 } })],
        ['subscribe since.epoch a number', () => any.subscribe!.call(c, 'a.>', { since: { epoch: 5, offset: 1 } })],
        ['subscribe recover a string', () => any.subscribe!.call(c, 'a.>', { recover: 'no' })],
        ['subscribe latest a string', () => any.subscribe!.call(c, 'a.>', { latest: 'no' })],
        ['subscribe durable a number', () => any.subscribe!.call(c, 'a.>', { durable: 1 })],
        ['request timeout a string', () => any.request!.call(c, 'svc', 'x', { timeout: '50' })],
        ['unsubscribe undefined', () => any.unsubscribe!.call(c, undefined)],
        ['unsubscribe an object', () => any.unsubscribe!.call(c, {})],
        ['iterating a callback subscription', () => c.subscribe('a.cb', { callback: () => {} })[Symbol.asyncIterator]()],
      ];
      const got = [];
      for (const [what, f] of calls) got.push([what, await outcome(f)]);
      expect(got).toEqual(calls.map(([what]) => [what, REFUSED]));
      // A responder's bad options: refused at respond(), the request gets no reply.
      const answered: string[] = [];
      c.subscribe('svc', { callback: (m) => answered.push(await_(() => (m.respond as (...a: unknown[]) => unknown)('r', 'x')), await_(() => m.respond('r', { codec: 5 as unknown as never }))) });
      await c.request('svc', 'q', { timeout: 300 }).catch(() => undefined);
      expect(answered).toEqual([REFUSED, REFUSED]);
      // The client goes on and closes cleanly: nothing thrown later from a timer.
      c.publish('a.b', 'ok');
      await c.flush();
      await c.close();
      await sleep(50);
      expect(uncaught).toEqual([]);
    });
  }
});

/** The outcome of a synchronous call, as `outcome` says it. */
function await_(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (e) {
    const err = e as { constructor: { name: string }; code?: string };
    return `${err.constructor.name} ${String(err.code)}`;
  }
}

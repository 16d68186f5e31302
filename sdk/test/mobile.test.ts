import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { MeshNode } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { Fixture, frameWithExt, sleep, until, url } from '@meshbus/testkit';
import { FrameType, encodeFrame } from '@meshbus/proto';
import { connect as nodeConnect, type Client, type Msg, type Status } from '../src/index.js';
import type * as Mobile from '../src/mobile.js';
import { bundle } from './bundles.js';
import { hostileWsNode, welcomeWithExtra } from './helpers.js';

type AppStateValue = 'active' | 'background';

/** An injectable AppState/NetInfo: the test flips it like the OS would. */
class Switch<T> {
  private readonly listeners = new Set<(v: T) => void>();
  constructor(public value: T) {}
  set(v: T): void {
    this.value = v;
    for (const l of this.listeners) l(v);
  }
  subscribe = (cb: (v: T) => void): (() => void) => {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  };
  get count(): number {
    return this.listeners.size;
  }
}

/**
 * Loads the mobile bundle in a fresh vm context that has only what an
 * embedded runtime gives: WebSocket, timers and JS built-ins. No process,
 * Buffer, TextEncoder/TextDecoder, URL, DOM or fetch.
 */
function loadMobile(): typeof Mobile {
  const sandbox: Record<string, unknown> = { WebSocket, setTimeout, clearTimeout, setInterval, clearInterval };
  const ctx = vm.createContext(sandbox);
  for (const g of ['process', 'Buffer', 'TextEncoder', 'TextDecoder', 'require', 'window', 'document', 'navigator', 'queueMicrotask', 'URL']) {
    expect(vm.runInContext(`typeof ${g}`, ctx), g).toBe('undefined');
  }
  vm.runInContext(bundle('meshbus.mobile.js'), ctx, { filename: 'meshbus.mobile.js' });
  return (ctx as { meshbusMobile: typeof Mobile }).meshbusMobile;
}

const fx = new Fixture();
afterEach(() => fx.teardown());

async function wsNode(opts: Parameters<Fixture['node']>[0] = {}): Promise<{ node: MeshNode; gw: WsGateway; wsUrl: string }> {
  const node = await fx.node({ pingInterval: 1000, ...opts });
  const gw = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
  fx.closers.push(() => gw.close());
  return { node, gw, wsUrl: `ws://127.0.0.1:${gw.port}` };
}

const wsSessions = (n: MeshNode): number => [...n.connections()].filter((s) => s.transport.kind === 'ws' && s.isOpen).length;

describe('mobile SDK in a runtime without Node or DOM globals', () => {
  it('background → disconnect, foreground → reconnect with a fresh token, resubscribe, outbox flushed', async () => {
    const { node, wsUrl } = await wsNode({ token: 'tok' });
    const m = loadMobile();
    const app = new Switch<AppStateValue>('active');
    const net = new Switch<boolean>(true);
    let tokens = 0;
    const c = fx.track(
      await m.connect(wsUrl, {
        name: 'phone',
        getToken: () => (tokens++, 'tok'),
        appState: { current: () => app.value, subscribe: app.subscribe },
        network: { isConnected: () => net.value, subscribe: net.subscribe },
        reconnectBackoff: { base: 50, max: 200 },
      }) as unknown as Client,
    );
    const statuses: Status[] = [];
    c.on('status', (s) => statuses.push(s));
    expect(tokens).toBe(1);
    const got: string[] = [];
    c.subscribe('app.>', { callback: (msg: Msg) => got.push(`${msg.topic}=${msg.string()}`) });
    const server = fx.track(await nodeConnect(url(node), { token: 'tok' }));
    const fromPhone: string[] = [];
    server.subscribe('phone.>', { callback: (msg) => fromPhone.push(msg.string()) });
    await server.flush();
    await c.flush();
    server.publish('app.a', 'one');
    await until(() => got.length === 1, 'first event', 5000);

    app.set('background');
    await until(() => wsSessions(node) === 0, 'disconnect in background', 5000);
    expect(c.isConnected).toBe(false);
    expect(c.isSuspended).toBe(true);
    // Published while in the background: kept in the outbox, no reconnect attempt.
    c.publish('phone.x', 'queued while backgrounded');
    expect(c.outboxCount).toBe(1);
    await sleep(400);
    expect(wsSessions(node)).toBe(0);
    expect(statuses.filter((s) => s.type === 'reconnecting')).toEqual([]);

    app.set('active');
    await until(() => c.isConnected, 'reconnect on foreground', 5000);
    expect(tokens).toBe(2);
    await until(() => fromPhone.length === 1, 'outbox flushed', 5000);
    expect(fromPhone).toEqual(['queued while backgrounded']);
    await c.flush();
    server.publish('app.b', 'two');
    await until(() => got.length === 2, 'event after resubscribe', 5000);
    expect(got).toEqual(['app.a=one', 'app.b=two']);
    const connected = statuses.filter((s) => s.type === 'connected');
    expect(connected).toHaveLength(1);
    expect(connected[0]!.type === 'connected' && connected[0]!.reconnected).toBe(true);

    await c.close();
    expect(app.count).toBe(0);
    expect(net.count).toBe(0);
  });

  it('network lost → no reconnect attempts; network back → reconnects at once', async () => {
    const { node, wsUrl } = await wsNode();
    const m = loadMobile();
    const net = new Switch<boolean>(true);
    const c = fx.track(
      (await m.connect(wsUrl, {
        network: { isConnected: () => net.value, subscribe: net.subscribe },
        // Long backoff: only "reconnect now" can make the test's deadline.
        reconnectBackoff: { base: 30_000, max: 30_000 },
      })) as unknown as Client,
    );
    const got: string[] = [];
    c.subscribe('n.*', { callback: (msg: Msg) => got.push(msg.string()) });
    await c.flush();
    const statuses: Status[] = [];
    c.on('status', (s) => statuses.push(s));

    net.set(false);
    // The network really goes: the node side drops the socket.
    for (const s of node.connections()) if (s.transport.kind === 'ws') s.transport.destroy();
    await until(() => !c.isConnected, 'disconnected', 5000);
    await sleep(500);
    expect(statuses.filter((s) => s.type === 'reconnecting')).toEqual([]);
    expect(wsSessions(node)).toBe(0);

    const t0 = Date.now();
    net.set(true);
    await until(() => c.isConnected, 'reconnect when the network is back', 3000);
    expect(Date.now() - t0).toBeLessThan(2000);
    await c.flush();
    const pub = fx.track(await nodeConnect(url(node)));
    pub.publish('n.1', 'after');
    await until(() => got.length === 1, 'resubscribed', 5000);
    expect(got).toEqual(['after']);
  });

  it("backgroundPolicy 'keep': stays connected in the background and probes liveness on foreground", async () => {
    const { node, wsUrl } = await wsNode();
    const m = loadMobile();
    const app = new Switch<AppStateValue>('active');
    const c = fx.track(
      (await m.connect(wsUrl, {
        appState: { current: () => app.value, subscribe: app.subscribe },
        backgroundPolicy: 'keep',
        wakeTimeout: 500,
      })) as unknown as Client,
    );
    app.set('background');
    await sleep(200);
    expect(c.isConnected).toBe(true);
    const session = [...node.connections()].find((s) => s.transport.kind === 'ws')!;
    const before = session.msgsIn + session.bytesIn;
    app.set('active');
    // The probe is a PING now, answered: the connection stays.
    await until(() => session.bytesIn + session.msgsIn > before, 'probe sent', 2000);
    await sleep(700);
    expect(c.isConnected).toBe(true);
    expect(c.stats().reconnects).toBe(0);
  });

  it('a kept connection that died while the app slept is detected on foreground and replaced', async () => {
    const { node, gw, wsUrl } = await wsNode();
    const m = loadMobile();
    const app = new Switch<AppStateValue>('active');
    const c = fx.track(
      (await m.connect(wsUrl, {
        appState: { current: () => app.value, subscribe: app.subscribe },
        backgroundPolicy: 'keep',
        wakeTimeout: 300,
        reconnectBackoff: { base: 20, max: 50 },
      })) as unknown as Client,
    );
    app.set('background');
    // Half-open: the node stops reading and answering (like a NAT that forgot the flow).
    const session = [...node.connections()].find((s) => s.transport.kind === 'ws')!;
    session.transport.pause();
    const realSend = (session as unknown as { send(c: Uint8Array): void }).send;
    (session as unknown as { send(c: Uint8Array): void }).send = () => {};
    app.set('active');
    await until(() => c.stats().reconnects === 1 && c.isConnected, 'stale connection replaced', 5000);
    (session as unknown as { send: typeof realSend }).send = realSend;
    expect(gw.connectionCount).toBeGreaterThanOrEqual(1);
  });
});

describe('mobile bundle', () => {
  it('exports the same API as the browser entry plus the lifecycle binding', () => {
    const m = loadMobile();
    for (const k of ['connect', 'bindLifecycle', 'webSocketTransport', 'JsonCodec', 'MsgpackCodec', 'ClientError', 'MemoryOutbox']) {
      expect(typeof (m as unknown as Record<string, unknown>)[k], k).not.toBe('undefined');
    }
    // msgpack and UTF-8 work without TextEncoder/TextDecoder/Buffer.
    const v = { a: 'héllo ✓', n: [1, 2.5, -3], t: true };
    expect(m.MsgpackCodec.decode(m.MsgpackCodec.encode(v))).toEqual(v);
    expect(m.StringCodec.decode(m.StringCodec.encode('ünïcødé 🚀'))).toBe('ünïcødé 🚀');
  });
});

describe('issue #14 fixes in the mobile bundle (no TextEncoder/TextDecoder: proto’s hand codec)', () => {
  const codeOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (e) {
      return (e as { code?: string }).code ?? 'untyped';
    }
  };

  it('strings round-trip exactly (leading BOM kept) or are refused at the call; offline publishes are checked as online; sub.drain()', async () => {
    const { wsUrl } = await wsNode();
    const m = loadMobile();
    const c = fx.track((await m.connect(wsUrl, { reconnectBackoff: { base: 50, max: 200 } })) as unknown as Client);
    const got: Msg[] = [];
    const sub = c.subscribe('\uFEFFdemo.>', { callback: (msg: Msg) => got.push(msg) });
    await c.flush();
    expect(codeOf(() => c.subscribe('a.\uD83D'))).toBe('MB_ERR_BAD_TOPIC');
    expect(codeOf(() => c.publish('a.\uD83D', 'x'))).toBe('MB_ERR_BAD_TOPIC');
    expect(codeOf(() => c.publish('\uFEFFdemo.x', 'x', { headers: { k: 'v\uDC00' } }))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => c.publish('\uFEFFdemo.x', 'x\uD800'))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(codeOf(() => c.publish('\uFEFFdemo.x', 'x', { headers: { pad: 'x'.repeat(70000) } }))).toBe('MB_ERR_INVALID_ARGUMENT');
    const long = '\uFEFF' + 'é'.repeat(100);
    c.publish('\uFEFFdemo.x', '\uFEFFhello', { headers: { '\uFEFFk': long } });
    await c.flush();
    await until(() => got.length === 1);
    expect(got[0]!.topic).toBe('\uFEFFdemo.x');
    expect(got[0]!.string()).toBe('\uFEFFhello');
    expect(got[0]!.headers).toEqual({ '\uFEFFk': long });
    await sub.drain();
    expect(sub.isClosed).toBe(true);
    c.suspend();
    await until(() => !c.isConnected);
    expect(codeOf(() => c.publish('x', 'x', { headers: { pad: 'x'.repeat(70000) } }))).toBe('MB_ERR_INVALID_ARGUMENT');
    expect(c.outboxCount).toBe(0);
  });
});

describe('a hostile node against the mobile bundle (thirteenth session)', () => {
  /** What one connection attempt to a node answering `body` costs this process, and how it ends. */
  const attempt = async (m: typeof Mobile, body: Uint8Array): Promise<{ us: number; outcome: string }> => {
    const hostile = await hostileWsNode(body);
    fx.closers.push(() => hostile.close());
    const t0 = process.cpuUsage();
    const outcome = await m.connect(`ws://127.0.0.1:${hostile.port}`, { maxReconnectAttempts: 0 }).then(
      async (c) => (await (c as unknown as Client).close(), 'connected'),
      (e: { code?: string; cause?: { code?: string; message?: string } }) => `${e.code} ${e.cause?.code ?? ''} ${e.cause?.message ?? ''}`,
    );
    const t = process.cpuUsage(t0);
    return { us: t.user + t.system, outcome };
  };

  /**
   * The cheapest of 3 attempts with each of two WELCOME bodies, µs of this
   * process's CPU (a ratio, not a speed), each attempt ending as `ends` says.
   */
  const cheapest = async (m: typeof Mobile, a: Uint8Array, b: Uint8Array, ends: [RegExp, RegExp]): Promise<[number, number]> => {
    const best: [number, number] = [Infinity, Infinity];
    for (let i = 0; i < 3; i++) {
      for (const k of [0, 1] as const) {
        const r = await attempt(m, k === 0 ? a : b);
        expect(r.outcome).toMatch(ends[k]);
        best[k] = Math.min(best[k], r.us);
      }
    }
    return best;
  };
  const n = 3_500_000;

  it('a WELCOME of 3.5 million empty maps in an unknown key is refused as it is decoded, at the cost of a plain one', async () => {
    // Before: the bomb connected, ~0.8 s of CPU.
    const [bomb, plain] = await cheapest(loadMobile(), welcomeWithExtra(n, 'empty maps'), welcomeWithExtra(n, 'string'), [/^MB_ERR_CONNECT_FAILED MB_ERR_BAD_BODY .*maps and arrays/, /^connected$/]);
    console.log(`mobile bundle, one attempt: ${n} empty maps ${bomb / 1000} ms CPU, a string of as many bytes ${plain / 1000} ms`);
    expect(bomb / plain).toBeLessThan(3);
  });

  it("a WELCOME's 3.5 MB string is decoded without TextDecoder in a few times what its bytes cost (it was 1.0-1.7 s of CPU a connection attempt)", async () => {
    // A byte string is a view of what arrived: what the bytes alone cost.
    const [str, bin] = await cheapest(loadMobile(), welcomeWithExtra(n, 'string'), welcomeWithExtra(n, 'bytes'), [/^connected$/, /^connected$/]);
    console.log(`mobile bundle, one attempt: a ${n}-byte string ${str / 1000} ms CPU, a byte string ${bin / 1000} ms`);
    // proto utf8.ts decodeSlow: one string per character made a rope of 3.5 million nodes (~110 x the bytes' cost).
    expect(str / bin).toBeLessThan(20);
  });

  it('an event whose extension block holds 60,000 empty maps in an unknown key is refused as it is decoded (MB_ERR_BAD_EXTENSION), the next one delivered', async () => {
    const m = loadMobile();
    const maps = 60_000;
    // { zz: [ {} x maps ] }: 60 KB, within the 65,535-byte block.
    const ext = Buffer.concat([Buffer.from([0x81, 0xa2, 0x7a, 0x7a, 0xdc, maps >> 8, maps & 0xff]), Buffer.alloc(maps, 0x80)]);
    const hostile = await hostileWsNode(welcomeWithExtra(0, 'string'), (f, send) => {
      if (f.type !== FrameType.SUB) return;
      send(frameWithExt({ type: FrameType.PUB, topic: 'a.b', sid: f.correlation, payload: Buffer.from('bomb') }, ext));
      send(encodeFrame({ type: FrameType.PUB, topic: 'a.b', sid: f.correlation, ext: { headers: { k: 'v' } }, payload: Buffer.from('plain') }));
    });
    fx.closers.push(() => hostile.close());
    const c = fx.track((await m.connect(`ws://127.0.0.1:${hostile.port}`, { maxReconnectAttempts: 0 })) as unknown as Client);
    const errors: string[] = [];
    c.on('status', (s) => void (s.type === 'error' && errors.push(String((s as { error?: { code?: string } }).error?.code))));
    const got: string[] = [];
    c.subscribe('a.>', { callback: (msg: Msg) => got.push(msg.string()) });
    await until(() => got.includes('plain'), 'the plain event delivered');
    expect(got).toEqual(['plain']);
    expect(errors).toEqual(['MB_ERR_BAD_EXTENSION']);
  });
});

/**
 * Lifecycle faults of other messaging clients (socket.io-client #308, MQTT.js,
 * nats.js, ws; cordis #49 for iterators) replayed against the SDK on real
 * nodes and real sockets (TCP, and the node's WebSocket gateway): a client
 * closed from its own status listener, a hung getToken(), concurrent next()
 * calls, and an iterator queue that kept whole socket reads alive. Each test
 * fails on the code before its fix (RELIABILITY.md, "Thirteenth session, SDK
 * client lifecycle").
 */
import { describe, expect, it } from 'vitest';
import { WsGateway } from '@meshbus/core/ws';
import { nodeKit, sleep, tcpProxy, until, url, type TcpProxy } from '@meshbus/testkit';
import { connect, type Client, type Msg, type Status } from '../src/index.js';
import { tcpProxy as freezingProxy } from './helpers.js';
import WebSocket from 'ws';
import { bindLifecycle, connect as mobileConnect, type AppStateAdapter, type AppStateValue, type WebSocketConstructor } from '../src/mobile.js';

const fx = nodeKit();

/** The node's TCP port and its WebSocket gateway, each behind a proxy that can cut the connection. */
async function endpoints(): Promise<Array<{ name: string; url: string; proxy: TcpProxy }>> {
  const out: Array<{ name: string; url: string; proxy: TcpProxy }> = [];
  for (const { name, target, at } of await ports()) {
    const proxy = await tcpProxy(target);
    fx.defer(() => proxy.close());
    out.push({ name, url: at(proxy.port), proxy });
  }
  return out;
}

/** A node's TCP port and its WebSocket gateway's, with the URL of each through a proxy at port `p`. */
async function ports(): Promise<Array<{ name: string; target: number; at: (p: number) => string }>> {
  const n = await fx.node();
  const gw = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  fx.defer(() => gw.close());
  return [
    { name: 'TCP', target: n.port, at: (p) => url(p) },
    { name: 'WebSocket', target: gw.port, at: (p) => `ws://127.0.0.1:${p}/` },
  ];
}

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('close() from a status listener', () => {
  it("in a 'disconnected' listener: the client stays closed (it went on to reconnect, and connected again, closed() already resolved)", async () => {
    for (const ep of await endpoints()) {
      const c = fx.track(await connect(ep.url, { reconnectBackoff: { base: 10, max: 20 } }));
      c.on('status', (s) => {
        if (s.type === 'disconnected') void c.close();
      });
      ep.proxy.cut();
      await c.closed();
      await sleep(300);
      expect({ transport: ep.name, closed: c.isClosed, connected: c.isConnected, dials: ep.proxy.dials() }).toEqual({ transport: ep.name, closed: true, connected: false, dials: 1 });
    }
  });

  it("in a 'reconnecting' listener with a backoff delay: no timer is left (the delay's timer held the process, 8 s here)", async () => {
    const n = await fx.node();
    const proxy = await tcpProxy(n.port);
    const baseline = timers();
    const c = fx.track(await connect(url(proxy.port), { reconnectBackoff: { base: 8000, max: 8000, random: () => 0.99 } }));
    const closing = new Promise<Status>((resolve) =>
      c.on('status', (s) => {
        if (s.type === 'reconnecting' && s.delay > 0) {
          void c.close();
          resolve(s);
        }
      }),
    );
    await proxy.close(); // the connection cut and the port refused: the first attempt (at once) fails, the second waits
    expect((await closing).delay).toBeGreaterThan(7000);
    await sleep(50);
    expect(c.isClosed).toBe(true);
    expect(timers()).toBe(baseline);
  });
});

describe('an attempt waiting in a getToken() that never settles', () => {
  it("connect()'s signal aborts it: rejected 'connect aborted' (connect() never settled)", async () => {
    const n = await fx.node();
    const ac = new AbortController();
    let calls = 0;
    const pending = connect(url(n), { signal: ac.signal, getToken: () => (calls++, new Promise<string>(() => {})) });
    await until(() => calls === 1, 'getToken() called', 5000);
    ac.abort();
    const got = await Promise.race([pending.then(() => 'resolved', (e: unknown) => e), sleep(2000).then(() => 'still pending')]);
    expect(got).toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED', message: expect.stringMatching(/aborted/) });
  });

  it('suspend() then resume() gives it up and tries again with a fresh getToken() (the client never reconnected)', async () => {
    for (const ep of await endpoints()) {
      let calls = 0;
      // The first reconnect's token fetch hangs for good (a request lost with the network); the others answer.
      const c: Client = fx.track(await connect(ep.url, { reconnectBackoff: { base: 10, max: 20 }, getToken: () => (++calls === 2 ? new Promise<string>(() => {}) : undefined) }));
      ep.proxy.cut();
      await until(() => calls === 2, `${ep.name}: the reconnect waits in getToken()`, 5000);
      c.suspend();
      c.resume();
      const connected = await Promise.race([until(() => c.isConnected, 'reconnected', 3000).then(() => true), sleep(3000).then(() => false)]).catch(() => false);
      expect({ transport: ep.name, connected, calls }).toEqual({ transport: ep.name, connected: true, calls: 3 });
      await c.close();
    }
  });

  it('close() gives it up: closed() resolves and no connection is made when the fetch never answers (a guard: held before too)', async () => {
    const n = await fx.node();
    const proxy = await tcpProxy(n.port);
    fx.defer(() => proxy.close());
    let calls = 0;
    const c = fx.track(await connect(url(proxy.port), { reconnectBackoff: { base: 10, max: 20 }, getToken: () => (++calls === 2 ? new Promise<string>(() => {}) : undefined) }));
    proxy.cut();
    await until(() => calls === 2, 'the reconnect waits in getToken()', 5000);
    await c.close();
    await sleep(100);
    expect(proxy.dials()).toBe(1);
  });
});

describe('concurrent next() calls on an async iterator', () => {
  it('a subscription settles each call in order, and every call still waiting when it ends (all but the last never settled)', async () => {
    for (const ep of await endpoints()) {
      const c = fx.track(await connect(ep.url));
      const sub = c.subscribe('it.conc');
      const it = sub[Symbol.asyncIterator]();
      const first = it.next();
      const second = it.next();
      await c.flush();
      c.publish('it.conc', '1');
      c.publish('it.conc', '2');
      const got = await Promise.race([Promise.all([first, second]).then((r) => r.map((x) => (x.value as Msg).string())), sleep(2000).then(() => 'pending')]);
      expect({ transport: ep.name, got }).toEqual({ transport: ep.name, got: ['1', '2'] });
      const third = it.next();
      const fourth = it.next();
      sub.unsubscribe();
      const ended = await Promise.race([Promise.all([third, fourth]).then((r) => r.map((x) => x.done)), sleep(2000).then(() => 'pending')]);
      expect(ended).toEqual([true, true]);
      await c.close();
    }
  });

  it('a status() iterator likewise', async () => {
    const [ep] = await endpoints();
    const c = fx.track(await connect(ep!.url, { reconnectBackoff: { base: 10, max: 20 } }));
    const it = c.status();
    const a = it.next();
    const b = it.next();
    ep!.proxy.cut();
    const got = await Promise.race([Promise.all([a, b]).then((r) => r.map((x) => (x.value as Status).type)), sleep(3000).then(() => 'pending')]);
    expect(got).toEqual(['disconnected', 'reconnecting']);
  });
});

describe('an async-iterator subscription that is not read, beside traffic that is', () => {
  it('keeps at most 64 socket reads alive, not one per waiting event (3,000 events of 1 byte held 90 MB of reads)', async () => {
    for (const ep of await endpoints()) {
      const pub = fx.track(await connect(ep.url));
      const c = fx.track(await connect(ep.url));
      let big = 0;
      c.subscribe('pin.big', { callback: () => void big++ });
      const slow = c.subscribe('pin.small');
      await c.flush();
      const N = 3000;
      const payload = new Uint8Array(30_000);
      for (let i = 0; i < N; i++) {
        pub.publish('pin.big', payload);
        pub.publish('pin.small', 'x');
        if (i % 50 === 0) await pub.flush();
      }
      await until(() => slow.pending === N && big === N, `${ep.name}: every event arrived`, 30_000);
      // What the waiting events keep alive: the distinct buffers their bytes lie in.
      const held = new Set<ArrayBufferLike>();
      let read = 0;
      for await (const m of slow) {
        held.add(m.data.buffer);
        if (++read === N) break;
      }
      let bytes = 0;
      for (const b of held) bytes += b.byteLength;
      if (process.env['MB_PRINT']) console.log(`${ep.name}: ${held.size} buffers, ${(bytes / 1e6).toFixed(1)} MB`);
      expect({ transport: ep.name, read, heldUnder8MiB: bytes < 8 * 1024 * 1024 }).toEqual({ transport: ep.name, read: N, heldUnder8MiB: true });
      await c.close();
      await pub.close();
    }
  });
});

describe('close() on a link that stopped answering', () => {
  it('over WebSocket the socket is destroyed 2 s after close(), as over TCP (ws waited 30 s for the answer to its close frame, holding the process)', async () => {
    const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    for (const { name, target, at } of await ports()) {
      const proxy = await freezingProxy(target);
      fx.defer(() => proxy.close());
      const c = await connect(at(proxy.port), { reconnect: false });
      proxy.freeze(); // half-open: nothing crosses any more, no FIN, no RST (a network gone, a NAT entry dropped)
      const open = sockets();
      await c.close();
      // The bound is 2 s (CLOSE_WAIT); 10 s leaves room for a loaded machine and is still a third of ws's 30 s.
      const gone = await until(() => sockets() < open, 'the client socket destroyed', 10_000).then(
        () => 'destroyed',
        () => 'still open after 10 s',
      );
      expect({ transport: name, gone }).toEqual({ transport: name, gone: 'destroyed' });
    }
  });
});

/** An app-state source the test drives (what React Native's AppState or a page's visibility is to the entries). */
function appState(): AppStateAdapter & { set(s: AppStateValue): void } {
  let now: AppStateValue = 'active';
  const cbs = new Set<(s: AppStateValue) => void>();
  return {
    current: () => now,
    subscribe: (cb) => (cbs.add(cb), () => void cbs.delete(cb)),
    set(s) {
      now = s;
      for (const cb of cbs) cb(s);
    },
  };
}

describe("the platform lifecycle and the app's own suspend()", () => {
  it('a foreground (mobile entry) or a visible page (the browser policy) does not resume a client the app suspended (it reconnected it)', async () => {
    const [tcp, ws] = await endpoints();
    const variants: Array<{ name: string; make: (a: AppStateAdapter) => Promise<Client> }> = [
      { name: 'mobile entry over WebSocket', make: (a) => mobileConnect(ws!.url, { WebSocket: WebSocket as unknown as WebSocketConstructor, appState: a }) },
      {
        name: "browser policy ('keep') over TCP",
        make: async (a) => {
          const c = await connect(tcp!.url);
          bindLifecycle(c, { appState: a, backgroundPolicy: 'keep' });
          return c;
        },
      },
    ];
    for (const v of variants) {
      const a = appState();
      const c = fx.track(await v.make(a));
      c.suspend(); // the app's decision: a logout, an "offline mode"
      a.set('background');
      a.set('active');
      await sleep(300);
      expect({ variant: v.name, suspended: c.isSuspended, connected: c.isConnected }).toEqual({ variant: v.name, suspended: true, connected: false });
      // What the lifecycle suspends it resumes (the mobile default policy), and the app's resume() still works.
      c.resume();
      await until(() => c.isConnected, `${v.name}: resumed by the app`, 5000);
      a.set('background');
      a.set('active');
      await until(() => c.isConnected, `${v.name}: connected after the foreground`, 5000);
      await c.close();
    }
  });
});

describe("the app's own suspend() while the platform lifecycle's suspension holds", () => {
  it('a logout in the background (suspend() of a client the background suspended) stays in force at the next foreground (the foreground resumed it)', async () => {
    const [tcp, ws] = await endpoints();
    for (const [name, make] of [
      ['mobile entry over WebSocket', (a: AppStateAdapter) => mobileConnect(ws!.url, { WebSocket: WebSocket as unknown as WebSocketConstructor, appState: a })],
      ['bindLifecycle over TCP', async (a: AppStateAdapter) => {
        const c = await connect(tcp!.url);
        bindLifecycle(c, { appState: a });
        return c;
      }],
    ] as const) {
      const a = appState();
      const c = fx.track(await make(a));
      a.set('background'); // the lifecycle suspends it
      c.suspend(); // the app's decision meanwhile: a logout
      a.set('active');
      await sleep(300);
      expect({ name, suspended: c.isSuspended, connected: c.isConnected }).toEqual({ name, suspended: true, connected: false });
      // Without the app's suspend(), the foreground resumes what the background suspended; the app's resume() still works.
      c.resume();
      await until(() => c.isConnected, `${name}: resumed by the app`, 5000);
      a.set('background');
      expect(c.isSuspended).toBe(true);
      a.set('active');
      await until(() => c.isConnected, `${name}: connected after the foreground`, 5000);
      await c.close();
    }
  });
});

describe('the platform says the network is back (or the app is in front) while a reconnect waits out its backoff', () => {
  it('setOnline(true), checkLiveness() and resume() make the attempt now (it waited the whole delay: only an offline → online change did)', async () => {
    for (const { name, target, at } of await ports()) {
      for (const hint of ['setOnline(true)', 'checkLiveness()', 'resume()'] as const) {
        let down = false;
        const proxy = await tcpProxy(() => (down ? undefined : target)); // undefined: refused
        fx.defer(() => proxy.close());
        const c = fx.track(await connect(at(proxy.port), { reconnectBackoff: { base: 30_000, max: 30_000, random: () => 0.99 } }));
        const waiting = new Promise<void>((r) => c.on('status', (s) => s.type === 'reconnecting' && s.delay > 0 && r()));
        down = true;
        proxy.cut(); // the first attempt (at once) is refused, the next waits ~30 s
        await waiting;
        down = false; // the network is back
        if (hint === 'setOnline(true)') c.setOnline(true);
        else if (hint === 'checkLiveness()') c.checkLiveness();
        else c.resume();
        const back = await until(() => c.isConnected, 'reconnected', 5000).then(
          () => 'reconnected',
          () => 'still waiting after 5 s',
        );
        expect({ transport: name, hint, back }).toEqual({ transport: name, hint, back: 'reconnected' });
        await c.close();
      }
    }
  });
});

describe('a lifecycle adapter that throws', () => {
  it("mobile connect() rejects with MB_ERR_INVALID_ARGUMENT and leaves no connection (it rejected with the adapter's error and left the client connected, reconnecting for ever, with no handle to close it)", async () => {
    const [, ws] = await endpoints();
    const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    const before = sockets();
    const broken: AppStateAdapter = {
      current: () => 'active',
      subscribe: () => {
        throw new Error('AppState is not ready');
      },
    };
    const err = await mobileConnect(ws!.url, { WebSocket: WebSocket as unknown as WebSocketConstructor, appState: broken }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'MB_ERR_INVALID_ARGUMENT', message: expect.stringMatching(/AppState is not ready/) });
    const left = await until(() => sockets() === before, 'the connection closed', 5000).then(
      () => 'none',
      () => `${sockets() - before} sockets still open`,
    );
    expect(left).toBe('none');
  });
});

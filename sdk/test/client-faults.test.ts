/**
 * Faults other clients had (nats.js, centrifuge-js, socket.io-client,
 * MQTT.js bug reports), replayed against the SDK with real sockets on
 * loopback: a real node, or a raw fake node that misbehaves on purpose.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { FrameType, decodeBody, encodeBody, encodeFrame, type Frame } from '@meshbus/proto';
import { silentLogger, startNode } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { until, cleanups, makePki, type TestPki } from '@meshbus/testkit';
import { connect, ServerPool, type Client, type Status } from '../src/index.js';
import { parseLearned } from '../src/servers.js';
import { fakeTcpNode, fakeWelcome, nextStatus } from './helpers.js';

const cleanup = cleanups();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface FakeNode {
  port: number;
  /** Connections accepted so far. */
  conns(): number;
  /** Stops accepting new connections (the open ones stay). */
  stopListening(): void;
}

/** A fake node on loopback (TLS with `cert`/`key`): `onFrame` answers each frame a client sends on socket `s`. */
async function fakeNode(onFrame: (s: net.Socket, f: Frame, conn: number) => void, tlsKeys?: { cert: string; key: string }): Promise<FakeNode> {
  const node = await fakeTcpNode(onFrame, tlsKeys);
  cleanup.push(() => node.stop());
  return node;
}

const welcome = (peers: string[] = []): Uint8Array => fakeWelcome(peers);

function track(c: Client): Client {
  cleanup.push(() => c.close().catch(() => {}));
  return c;
}

describe('user callbacks', () => {
  it('an async subscription callback that rejects is an error status with its sid, not an unhandled rejection, and the subscription goes on (TCP and WebSocket)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    cleanup.push(() => void process.off('unhandledRejection', onUnhandled));
    const n = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => n.close());
    const gw = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    cleanup.push(() => gw.close());
    for (const url of [`127.0.0.1:${n.port}`, `ws://127.0.0.1:${gw.port}/`]) {
      const c = track(await connect(url, { reconnect: false }));
      const errors: Status[] = [];
      c.on('status', (s) => s.type === 'error' && errors.push(s));
      let calls = 0;
      const sub = c.subscribe('cb.async', {
        callback: async (m) => {
          calls++;
          await Promise.resolve();
          if (m.string() === 'bad') throw new Error('handler failed');
        },
      });
      await c.flush();
      c.publish('cb.async', 'bad');
      c.publish('cb.async', 'good');
      await until(() => calls === 2 && errors.length === 1, `both events handled over ${url}`, 5000);
      await sleep(50);
      expect(unhandled).toEqual([]);
      expect(errors[0]).toMatchObject({ type: 'error', sid: sub.sid, error: { code: 'MB_ERR_INVALID_ARGUMENT' } });
      expect(sub.isClosed).toBe(false);
      await c.close();
    }
  });
});

describe('an attempt under way when the client is closed or suspended', () => {
  /** A node that drops the client's first connection; the first reconnect's getToken() then waits for `release`. */
  async function reconnectingInGetToken(): Promise<{ node: FakeNode; c: Client; release: () => void }> {
    let release: (() => void) | undefined;
    let calls = 0;
    const node = await fakeNode((s, f, conn) => {
      if (f.type !== FrameType.HELLO) return;
      s.write(welcome());
      if (conn === 1) setTimeout(() => s.destroy(), 20);
    });
    const c = track(
      await connect(`127.0.0.1:${node.port}`, {
        reconnectBackoff: { base: 1, max: 2 },
        getToken: () => (++calls === 2 ? new Promise<string>((r) => (release = () => r('slow'))) : 'fresh'),
      }),
    );
    await until(() => release !== undefined, 'the reconnect waits in getToken()', 5000);
    return { node, c, release: release! };
  }

  it('close() while getToken() runs: no socket is opened afterwards (one was, through a whole handshake)', async () => {
    const { node, c, release } = await reconnectingInGetToken();
    await c.close();
    release();
    await sleep(300);
    expect(node.conns()).toBe(1);
    expect(c.isClosed).toBe(true);
  });

  it('suspend() while getToken() runs: no connection until resume() (the client connected while suspended)', async () => {
    const { node, c, release } = await reconnectingInGetToken();
    c.suspend();
    release();
    await sleep(300);
    expect(node.conns()).toBe(1);
    expect(c.isConnected).toBe(false);
    expect(c.isSuspended).toBe(true);
    c.resume();
    await until(() => c.isConnected, 'connected after resume()', 5000);
    expect(node.conns()).toBe(2);
  });
});

describe('servers learned over TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });

  it('a node reached over tls:// that announces host:port peers: the client reaches them over TLS and never sends its token in the clear (it did, in its HELLO)', async () => {
    const plainHellos: unknown[] = [];
    const plain = await fakeNode((_s, f) => {
      if (f.type === FrameType.HELLO) plainHellos.push(decodeBody(f.payload));
    });
    const peer = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome());
    }, { cert: pki.cert, key: pki.key });
    const first: FakeNode = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      // The peers as a TLS mesh announces them by default: host:port of each node's (TLS) client listener.
      s.write(welcome([`127.0.0.1:${plain.port}`, `127.0.0.1:${peer.port}`]));
      first.stopListening();
      setTimeout(() => s.destroy(), 20);
    }, { cert: pki.cert, key: pki.key });
    const c = track(await connect(`tls://127.0.0.1:${first.port}`, { token: 'secret', tls: { ca: pki.ca }, reconnectBackoff: { base: 1, max: 20 } }));
    await until(() => c.server === `tls://127.0.0.1:${peer.port}`, 'failed over to the announced peer over TLS', 5000);
    expect(plainHellos).toEqual([]);
    expect(c.servers).toEqual([`tls://127.0.0.1:${first.port}`, `tls://127.0.0.1:${plain.port}`, `tls://127.0.0.1:${peer.port}`]);
  });

  it('learned and redirect URLs heard over tls:// or wss:// are taken encrypted; over plain connections as announced', () => {
    expect(parseLearned('h:1', true).href).toBe('tls://h:1');
    expect(parseLearned('meshbus://h:1', true).href).toBe('tls://h:1');
    expect(parseLearned('ws://h:8/mb', true).href).toBe('wss://h:8/mb');
    expect(parseLearned('wss://h/', true).href).toBe('wss://h:443/');
    expect(parseLearned('h:1', false).href).toBe('tcp://h:1');
    const pool = new ServerPool(['wss://a/']);
    expect(pool.learn(['ws://b:80/', 'c:2'], pool.list()[0]).map((u) => u.href)).toEqual(['wss://b:80/', 'tls://c:2']);
    expect(new ServerPool(['a:1']).learn(['ws://b/'], { scheme: 'tcp', host: 'a', port: 1, path: '', href: 'tcp://a:1' }).map((u) => u.href)).toEqual(['ws://b:80/']);
  });
});

describe('reconnect storms', () => {
  const backoff = { base: 250, max: 20_000, random: () => 0.5 };

  it('a node that says GOODBYE MB_ERR_DRAINING right after every WELCOME gets a few reconnects, not one per round trip (127 in 1 s)', async () => {
    const node = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      s.write(welcome());
      setTimeout(() => s.write(encodeFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 2012, reason: 'draining' }) })), 5);
    });
    track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: backoff }));
    await sleep(1000);
    // The first young connection is left at once (a node may drain just after the client came), then delays of 250, 500, 1000 ms...
    expect(node.conns()).toBeLessThanOrEqual(5);
  });

  it("an acked publish unanswered at a GOODBYE that says `answered` is sent on the next connection; at one that does not, it rejects (outcome unknown)", async () => {
    for (const answered of [true, undefined]) {
      const seen: number[] = [];
      const node = await fakeNode((s, f, conn) => {
        if (f.type === FrameType.HELLO) s.write(welcome());
        else if (f.type === FrameType.PUB && conn === 1) {
          seen.push(conn);
          // The first connection: a draining node that read it after its GOODBYE (not taken), or an older node.
          s.write(encodeFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 2012, reason: 'draining', ...(answered ? { answered } : {}) }) }));
          s.end();
        } else if (f.type === FrameType.PUB) {
          seen.push(conn);
          s.write(encodeFrame({ type: FrameType.ACK, correlation: f.correlation }));
        }
      });
      const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: backoff }));
      const r = await c.publish('t.x', 'once', { ack: true })!.then(() => 'acked', (e: { code: string }) => e.code);
      // Before: MB_ERR_CONNECTION_CLOSED either way (the node could not say it had not taken it).
      expect({ answered, r, seen }).toEqual(answered ? { answered, r: 'acked', seen: [1, 2] } : { answered, r: 'MB_ERR_CONNECTION_CLOSED', seen: [1] });
    }
  });

  it('a node that closes every connection right after WELCOME: the backoff keeps growing (it restarted at 0 after each WELCOME: 16 in 2 s)', async () => {
    const node = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      s.write(welcome());
      s.end();
    });
    const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: backoff }));
    const delays: number[] = [];
    c.on('status', (s) => s.type === 'reconnecting' && delays.push(s.delay));
    await sleep(2000);
    expect(node.conns()).toBeLessThanOrEqual(6);
    expect(delays.slice(0, 4)).toEqual([125, 250, 500, 1000]);
  });
});

describe('the wall clock', () => {
  it('set back an hour while the node goes silent: the dead connection is still found within a few pings (it waited the hour out)', async () => {
    let silent = false;
    const node = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome());
      if (f.type === FrameType.PING && !silent) s.write(encodeFrame({ type: FrameType.PONG, correlation: f.correlation }));
    });
    // One wall clock for everything, set back on demand (the heartbeat reads Date.now as it was when it started).
    const realNow = Date.now.bind(Date);
    let offset = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset);
    cleanup.push(() => clock.mockRestore());
    const c = track(await connect(`127.0.0.1:${node.port}`, { pingInterval: 100, maxPingOut: 2, wakeTimeout: 300, reconnect: false }));
    await sleep(350); // a few pings answered
    offset = -3_600_000;
    silent = true;
    const closed = await Promise.race([c.closed(), sleep(3000).then(() => 'still open')]);
    expect(closed).toMatchObject({ code: 'MB_ERR_STALE_CONNECTION' });
  });
});

describe('deadlines past what a timer holds', () => {
  it('timeout: Infinity (request, flush, requestTimeout, connectTimeout, wakeTimeout) waits instead of firing at once (each failed in 1 ms with MB_ERR_TIMEOUT / MB_ERR_CONNECT_FAILED)', async () => {
    const n = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => n.close());
    const c = track(await connect(`127.0.0.1:${n.port}`, { connectTimeout: Infinity, requestTimeout: Infinity, wakeTimeout: Infinity }));
    c.subscribe('svc.slow', { callback: (m) => void setTimeout(() => m.respond('late but fine'), 50) });
    await c.flush(Infinity);
    expect((await c.request('svc.slow', 'x', { timeout: Infinity })).string()).toBe('late but fine');
    expect((await c.request('svc.slow', 'x', { timeout: 2 ** 31 })).string()).toBe('late but fine');
    expect((await c.request('svc.slow', 'x')).string()).toBe('late but fine');
  });

  it('reconnectBackoff max: Infinity: a delay past what a timer holds is not a 1 ms retry', async () => {
    const node = await fakeNode((s, f, conn) => {
      if (f.type !== FrameType.HELLO) return;
      s.write(welcome());
      if (conn === 1) setTimeout(() => s.destroy(), 20);
    });
    // The first reconnect waits 0.99 × 2^32 ms: more than a timer holds.
    const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 2 ** 32, max: Infinity, random: () => 0.99 } }));
    await sleep(500);
    expect(c.isConnected).toBe(false);
    expect(node.conns()).toBe(1);
  });
});

describe('acked publishes made offline', () => {
  it('wait within the outbox limits: past them MB_ERR_OUTBOX_FULL (they were kept without limit), with outbox: false MB_ERR_CONNECTION_CLOSED', async () => {
    const n = await startNode({ port: 0, logger: silentLogger });
    const c = track(await connect(`127.0.0.1:${n.port}`, { outbox: { maxMessages: 5, maxBytes: 1 << 20 }, reconnectBackoff: { base: 50, max: 100 } }));
    const off = track(await connect(`127.0.0.1:${n.port}`, { outbox: false, reconnectBackoff: { base: 50, max: 100 } }));
    await n.close();
    await until(() => !c.isConnected && !off.isConnected, 'both offline', 5000);
    const overflow: Status[] = [];
    c.on('status', (s) => s.type === 'outbox-overflow' && overflow.push(s));
    const waiting: Array<Promise<unknown>> = [];
    for (let i = 0; i < 5; i++) waiting.push(c.publish('dur.x', `e${i}`, { ack: true }).catch((e: unknown) => e));
    expect(() => c.publish('dur.x', 'one too many', { ack: true })).toThrow(expect.objectContaining({ code: 'MB_ERR_OUTBOX_FULL' }));
    expect(overflow).toHaveLength(1);
    // Plain publishes have their own room in the outbox.
    c.publish('plain.x', 'p');
    expect(c.outboxCount).toBe(1);
    expect(() => off.publish('dur.x', 'x', { ack: true })).toThrow(expect.objectContaining({ code: 'MB_ERR_CONNECTION_CLOSED' }));
    await c.close();
    for (const w of waiting) expect(await w).toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED' });
  });
});

describe('requests made offline', () => {
  it('wait within the outbox limits: past them MB_ERR_OUTBOX_FULL at once (they were held until their timeouts, without limit); room comes back as they time out', async () => {
    const n = await startNode({ port: 0, logger: silentLogger });
    const c = track(await connect(`127.0.0.1:${n.port}`, { outbox: { maxMessages: 5, maxBytes: 64 * 1024 }, reconnectBackoff: { base: 50, max: 100 } }));
    await n.close();
    await until(() => !c.isConnected, 'offline', 5000);
    const overflow: Status[] = [];
    c.on('status', (s) => s.type === 'outbox-overflow' && overflow.push(s));
    const waiting: Array<Promise<unknown>> = [];
    for (let i = 0; i < 4; i++) waiting.push(c.request('svc.x', `r${i}`, { timeout: 60_000 }).catch((e: unknown) => e));
    const short = c.request('svc.x', 'soon over', { timeout: 100 }).catch((e: unknown) => e);
    await expect(c.request('svc.x', 'one too many', { timeout: 60_000 })).rejects.toMatchObject({ code: 'MB_ERR_OUTBOX_FULL' });
    expect(overflow).toHaveLength(1);
    // A request that timed out gives its room back...
    expect(await short).toMatchObject({ code: 'MB_ERR_TIMEOUT' });
    // ...and bytes are bounded too: 100 KB past the 64 KiB limit.
    await expect(c.request('svc.x', new Uint8Array(100_000), { timeout: 60_000 })).rejects.toMatchObject({ code: 'MB_ERR_OUTBOX_FULL' });
    waiting.push(c.request('svc.x', 'fits again', { timeout: 60_000 }).catch((e: unknown) => e));
    await c.close();
    for (const w of waiting) expect(await w).toMatchObject({ code: 'MB_ERR_CONNECTION_CLOSED' });
  });
});

describe('what was made offline', () => {
  it('is sent on the next connection in the order it was made, plain and acked publishes and requests interleaved (it went as A, C, E, R1, R2, B, D)', async () => {
    const seen: string[] = [];
    const node = await fakeNode((s, f, conn) => {
      if (f.type === FrameType.HELLO) {
        s.write(welcome());
        if (conn === 1) setTimeout(() => s.destroy(), 20);
      }
      if (conn === 2 && (f.type === FrameType.PUB || f.type === FrameType.REQ)) seen.push(Buffer.from(f.payload).toString());
    });
    const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 300, max: 300, random: () => 0.99 }, requestTimeout: 10_000 }));
    await until(() => !c.isConnected, 'offline', 5000);
    const settled: Array<Promise<unknown>> = [];
    c.publish('o.a', 'A');
    settled.push(c.publish('o.b', 'B', { ack: true }).catch((e: unknown) => e));
    c.publish('o.c', 'C');
    settled.push(c.request('svc', 'R1').catch((e: unknown) => e));
    settled.push(c.publish('o.d', 'D', { ack: true }).catch((e: unknown) => e));
    c.publish('o.e', 'E');
    settled.push(c.request('svc', 'R2').catch((e: unknown) => e));
    await until(() => seen.length === 7, 'all seven sent', 5000);
    expect(seen).toEqual(['A', 'B', 'C', 'R1', 'D', 'E', 'R2']);
    await c.close();
    await Promise.all(settled);
  });
});

describe('liveness probes in a row', () => {
  it('checkLiveness() called every 100 ms on a dead connection still fails it within wakeTimeout (each call postponed the deadline)', async () => {
    const node = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome());
      // Silent afterwards: no PONG, no close, as a socket that died with the network.
    });
    const c = track(await connect(`127.0.0.1:${node.port}`, { wakeTimeout: 300, reconnect: false }));
    const probes = setInterval(() => c.checkLiveness(), 100);
    cleanup.push(() => clearInterval(probes));
    const closed = await Promise.race([c.closed(), sleep(2000).then(() => 'still open')]);
    expect(closed).toMatchObject({ code: 'MB_ERR_STALE_CONNECTION' });
  });
});

describe('close() while a TCP connect is under way', () => {
  it('to a server that never answers the SYN: the socket goes at once (it stayed until a 2 s timer destroyed it, holding the process)', async () => {
    // A listener whose accept queue is full (its process never runs its event loop again): SYNs are dropped.
    const hole = spawn(process.execPath, ['-e', `
      const srv = require('net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
        console.log(srv.address().port);
        setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 100);
      });`], { stdio: ['ignore', 'pipe', 'ignore'] });
    cleanup.push(() => void hole.kill('SIGKILL'));
    const port = await new Promise<number>((r) => hole.stdout!.once('data', (d: Buffer) => r(Number(String(d).trim()))));
    await sleep(300);
    const fill: net.Socket[] = [];
    cleanup.push(() => fill.forEach((s) => s.destroy()));
    for (let i = 0; i < 8; i++) fill.push(net.connect(port, '127.0.0.1').on('error', () => {}));
    await sleep(200);
    const node = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome([`127.0.0.1:${port}`]));
    });
    const c = track(await connect(`127.0.0.1:${node.port}`, { reconnectBackoff: { base: 1, max: 2 }, connectTimeout: 20_000 }));
    node.stopListening();
    const sockets = (): number => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    // The reconnect goes round-robin: the node (refused), then the black hole (learned).
    const dialing = nextStatus(c, (s) => s.type === 'reconnecting' && s.server === `tcp://127.0.0.1:${port}`);
    (c as unknown as { e: { conn?: { close(): void } } }).e.conn?.close();
    await dialing;
    await sleep(200);
    const before = sockets();
    await c.close();
    await sleep(100);
    expect(sockets()).toBe(before - 1);
  });
});

describe('a burst of large events to an iterator nobody reads', () => {
  it('holds at most pendingBytes (default 64 MiB) of events, then drops and reports (it held every event: 2,000 of 256 KiB = 500 MiB)', async () => {
    const big = Buffer.alloc(256 * 1024, 7);
    const node = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome());
      if (f.type === FrameType.SUB) for (let i = 0; i < 300; i++) s.write(encodeFrame({ type: FrameType.PUB, topic: 'burst', sid: f.correlation, payload: big }));
    });
    const c = track(await connect(`127.0.0.1:${node.port}`));
    const slow: Status[] = [];
    c.on('status', (s) => s.type === 'slow-consumer' && slow.push(s));
    const sub = c.subscribe('burst', { pendingBytes: 8 * 1024 * 1024 });
    await until(() => sub.pending + sub.dropped === 300, 'the burst arrived', 10_000);
    expect(sub.pending).toBe(31); // each event counted whole: 256 KiB of payload plus its frame's header and topic; 32 would pass 8 MiB
    expect(sub.dropped).toBe(269);
    expect(slow).toHaveLength(1);
    // A consumer that catches up gets what was held, in order, and new events again.
    let read = 0;
    for await (const m of sub) {
      expect(m.data.length).toBe(big.length);
      if (++read === 31) break;
    }
    expect(read).toBe(31);
    // The default bound, 64 MiB: 255 of the 300 (75 MiB) are held.
    const sub2 = c.subscribe('burst');
    await until(() => sub2.pending + sub2.dropped === 300, 'the second burst arrived', 10_000);
    expect(sub2.pending).toBe(255);
    expect(sub2.dropped).toBe(45);
  });

  it('counts an event whole, headers included (events of 60 KB of headers and no payload weighed nothing: 3,000 held 348 MB)', async () => {
    const headers = { pad: 'h'.repeat(60_000) };
    const node = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome());
      if (f.type === FrameType.SUB) for (let i = 0; i < 200; i++) s.write(encodeFrame({ type: FrameType.PUB, topic: 'hdr', sid: f.correlation, ext: { headers } }));
    });
    const c = track(await connect(`127.0.0.1:${node.port}`));
    const sub = c.subscribe('hdr', { pendingBytes: 1024 * 1024 });
    await until(() => sub.pending + sub.dropped === 200, 'the burst arrived', 10_000);
    // 1 MiB holds 17 events of ~60 KB; before, every one was held (weight 0) and none dropped.
    expect({ pending: sub.pending, dropped: sub.dropped }).toEqual({ pending: 17, dropped: 183 });
    let read = 0;
    for await (const m of sub) {
      expect(m.headers?.['pad']).toHaveLength(60_000);
      if (++read === 17) break;
    }
  });

  it('counts what decoded headers hold: many tiny headers weigh more than their bytes (272 events of 5,334 tiny headers held 52 MB of heap under 8 MiB)', async () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 5000; i++) headers[`h${i}`] = 'v';
    const node = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome());
      if (f.type === FrameType.SUB) for (let i = 0; i < 100; i++) s.write(encodeFrame({ type: FrameType.PUB, topic: 'tiny', sid: f.correlation, ext: { headers } }));
    });
    const c = track(await connect(`127.0.0.1:${node.port}`));
    const sub = c.subscribe('tiny', { pendingBytes: 4 * 1024 * 1024 });
    await until(() => sub.pending + sub.dropped === 100, 'the burst arrived', 10_000);
    // Each event: a ~34 KB frame and 5,000 decoded headers (~64 B each beyond their bytes): 11 fit 4 MiB, not 100 (frames alone).
    expect({ pending: sub.pending, dropped: sub.dropped }).toEqual({ pending: 11, dropped: 89 });
  });
});

describe('a node that never acknowledges', () => {
  it('an acked publish sent to it rejects with MB_ERR_TIMEOUT after ackTimeout, its entry gone (it held the promise and its payload until the connection dropped)', async () => {
    let pubs = 0;
    const node = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome());
      if (f.type === FrameType.PUB) pubs++; // never ACKed
    });
    const c = track(await connect(`127.0.0.1:${node.port}`));
    const t0 = Date.now();
    await expect(c.publish('d.x', new Uint8Array(100_000), { ack: true, ackTimeout: 200 })).rejects.toMatchObject({ code: 'MB_ERR_TIMEOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(pubs).toBe(1);
    expect(c.isConnected).toBe(true);
    // The default is long (30 s) but there; a bad value is refused.
    expect(() => c.publish('d.x', 'y', { ack: true, ackTimeout: 0 })).toThrow(/ackTimeout/);
  });
});

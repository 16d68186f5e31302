/**
 * A hostile node against the Node SDK: what a node sends must never throw
 * out of the client nor grow its memory or CPU without bound.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Flags, FrameDecoder, FrameType, decodeBody, encodeBody, encodeFrame, errorFrame, type Frame } from '@meshbus/proto';
import { silentLogger, startNode } from '@meshbus/core';
import { RawClient, until, cleanups } from '@meshbus/testkit';
import { WebSocketServer } from 'ws';
import { connect, type Client, type Status } from '../src/index.js';
import { STATUS_BACKLOG } from '../src/status-feed.js';
import { fakeTcpNode, fakeWelcome } from './helpers.js';

const cleanup = cleanups();

/** A fake node on loopback: `onFrame` answers each frame a client sends on socket `s`. */
async function fakeNode(onFrame: (s: net.Socket, f: Frame) => void): Promise<number> {
  const node = await fakeTcpNode(onFrame);
  cleanup.push(() => node.stop());
  return node.port;
}

const welcome = (peers: string[], ping = 30_000): Uint8Array => fakeWelcome(peers, ping);

async function client(port: number): Promise<Client> {
  const c = await connect(`127.0.0.1:${port}`, { reconnectBackoff: { base: 20, max: 50 } });
  cleanup.push(() => c.close().catch(() => {}));
  return c;
}

describe('peer lists from a node', () => {
  it('a WELCOME with 40,000 peers and a GOODBYE with 100,000 reconnect targets keep the server list bounded', async () => {
    const many = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `${tag}${i}.example:${1 + (i % 60_000)}`);
    let helloB = 0;
    const b = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      helloB++;
      s.write(welcome([]));
    });
    const a = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      s.write(welcome(many(40_000, 'w')));
      s.write(encodeFrame({ type: FrameType.GOODBYE, payload: encodeBody({ code: 2009, reason: 'bye', reconnect: [`127.0.0.1:${b}`, ...many(100_000, 'g')] }) }));
    });
    const c = await client(a);
    await until(() => helloB >= 1 && c.isConnected, 'redirected to the GOODBYE target', 10_000);
    expect(c.servers.length).toBeLessThanOrEqual(1 + 1024);
    expect(c.servers).toContain(`tcp://127.0.0.1:${b}`);
  });
});

describe('WELCOME ping from a node', () => {
  it('a ping interval past what a timer can hold (2^53 ms) does not turn the heartbeat into a 1 ms timer', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => void warnings.push(w.name);
    process.on('warning', onWarning);
    cleanup.push(() => void process.off('warning', onWarning));
    let pings = 0;
    const port = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome([], Number.MAX_SAFE_INTEGER));
      if (f.type === FrameType.PING) pings++;
    });
    const c = await client(port);
    // A round trip of our own: the heartbeat has had its first ticks meanwhile.
    await until(() => c.isConnected, 'connected', 5000);
    await new Promise((r) => setTimeout(r, 200));
    expect(warnings).not.toContain('TimeoutOverflowWarning');
    expect(pings).toBe(0);
  });
});

describe('replies to a request', () => {
  it('cannot be forged by a client that learned the requester\'s id (trace hop records used to name every receiver) and sprays its inbox', async () => {
    const n = await startNode({ port: 0, logger: silentLogger });
    cleanup.push(() => n.close());
    const opts = { reconnect: false } as const;
    // The victim is a service (it subscribes) that also makes requests.
    const victim = await connect(`127.0.0.1:${n.port}`, opts);
    cleanup.push(() => victim.close().catch(() => {}));
    victim.subscribe('svc.victim', { callback: () => {} });
    const db = await connect(`127.0.0.1:${n.port}`, opts);
    cleanup.push(() => db.close().catch(() => {}));
    db.subscribe('db.get', { callback: (m) => void setTimeout(() => m.respond('real'), 300) });
    await victim.flush();
    await db.flush();

    const attacker = await RawClient.connect(n.port);
    cleanup.push(() => attacker.close());
    const traceId = '0123456789abcdef';
    attacker.sub(`_TRACE.${traceId}`, 1);
    attacker.send({ type: FrameType.PUB, topic: 'svc.victim', flags: Flags.TRACE, ext: { trace: traceId }, payload: Buffer.from('x') });
    const hop = await attacker.waitFor((g) => g.type === FrameType.PUB && g.topic === `_TRACE.${traceId}`);
    // Hop records no longer name receivers (SPEC 10.9): the trace gives the attacker nothing...
    expect(decodeBody(hop.payload).to).toEqual(['client']);
    // ...but a client id may leak some other way: the inbox must hold even when it is known.
    const victimId = victim.info!.client;

    const answer = victim.request('db.get', 'k', { timeout: 5000 });
    // Spray replies on every likely reply topic of the victim's inbox.
    for (let i = 0; i < 200; i++) attacker.pub(`_INBOX.${victimId}.${i}`, 'forged');
    await attacker.flush();
    const got = await answer;
    expect(Buffer.from(got.data as Uint8Array).toString()).toBe('real');
  });
});

/** What the client's current connection has queued in its transport and not handed to the OS (test-only view of internals). */
function unsentOf(c: Client): number {
  const conn = (c as unknown as { e: { current(): { transport: { pendingBytes: number } } | undefined } }).e.current();
  if (!conn) throw new Error('not connected');
  return conn.transport.pendingBytes;
}

describe('frames a node makes the client send (hostile review: urgent paths within a bound)', () => {
  it('a node that stops reading and sends 1,000,000 PINGs: the client queues a bounded number of PONGs (it queued 60 MB)', async () => {
    let node: net.Socket | undefined;
    const port = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      node = s;
      s.write(welcome([]));
    });
    const c = await client(port);
    await until(() => c.isConnected && node !== undefined, 'connected', 5000);
    node!.pause();
    const ping = encodeFrame({ type: FrameType.PING, correlation: 1 });
    const chunk = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    for (let i = 0; i < 1000; i++) {
      if (!node!.write(chunk)) await new Promise((r) => node!.once('drain', r));
    }
    // The client read every PING (nothing waits toward it any more) and answered what it answers.
    await until(() => node!.writableLength === 0, 'the client read every PING', 20_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(c.isConnected).toBe(true);
    expect(unsentOf(c)).toBeLessThan(1024 * 1024);
  }, 60_000);

  it('an ERROR storm while the status iterator is not read: at most STATUS_BACKLOG wait, the rest are counted as dropped', async () => {
    let node: net.Socket | undefined;
    const port = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO) return;
      node = s;
      s.write(welcome([]));
    });
    const c = await client(port);
    await until(() => c.isConnected && node !== undefined, 'connected', 5000);
    const statuses = c.status();
    const storm = 5000;
    const err = (i: number): Uint8Array => errorFrame('MB_ERR_BAD_TOPIC', 0, `storm ${i}`);
    node!.write(Buffer.concat(Array.from({ length: storm }, (_, i) => err(i))));
    await until(() => c.stats().statusDropped === storm - STATUS_BACKLOG, `${storm - STATUS_BACKLOG} dropped`, 10_000);
    // What waits is the newest: the last error of the storm comes last.
    const got: string[] = [];
    for (let i = 0; i < STATUS_BACKLOG; i++) {
      const s = (await statuses.next()).value as Status;
      if (s.type === 'error') got.push(s.error.message);
    }
    expect(got).toHaveLength(STATUS_BACKLOG);
    expect(got[got.length - 1]).toContain(`storm ${storm - 1}`);
  });

  it('1,000 refusals of one SUB since (MB_ERR_TOO_MANY_REPLAYS) make one retry, not 1,000', async () => {
    let subs = 0;
    const port = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome([]));
      if (f.type !== FrameType.SUB) return;
      if (subs++ === 0) s.write(Buffer.concat(Array.from({ length: 1000 }, () => errorFrame('MB_ERR_TOO_MANY_REPLAYS', f.correlation, 'busy'))));
    });
    const c = await client(port);
    c.subscribe('d.x', { since: { epoch: '', offset: 0 }, callback: () => {} });
    await until(() => subs >= 2, 'the retry', 5000);
    await new Promise((r) => setTimeout(r, 700));
    expect(subs).toBe(2);
  });

  it('close() right after such a refusal leaves no retry timer behind (it held the process 300 ms after close())', async () => {
    let refusals = 0;
    const port = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(welcome([]));
      if (f.type === FrameType.SUB && refusals++ === 0) s.write(errorFrame('MB_ERR_TOO_MANY_REPLAYS', f.correlation, 'busy'));
      if (f.type === FrameType.PING) s.write(encodeFrame({ type: FrameType.PONG, correlation: f.correlation }));
    });
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    const c = await client(port);
    c.subscribe('d.x', { since: { epoch: '', offset: 0 }, callback: () => {} });
    await c.flush(); // the ERROR came before the PONG: the retry is armed
    await c.close();
    expect(timers()).toBe(baseline);
  });
});

describe('control bodies from a node are bounded before they are decoded (hostile review)', () => {
  /** A msgpack map {peers: [nil x n]}: n elements for n + 12 bytes, a decoding bomb. */
  const nilBomb = (n: number): Buffer => {
    const arr = Buffer.alloc(5 + n, 0xc0);
    arr[0] = 0xdd;
    arr.writeUInt32BE(n, 1);
    return Buffer.concat([Buffer.from([0x81, 0xa5]), Buffer.from('peers'), arr]);
  };

  it('a WELCOME of 30 MB (30 million nils) is refused unread, at once (it took 2.2 s and ~185 MiB to decode)', async () => {
    const port = await fakeNode((s, f) => {
      if (f.type === FrameType.HELLO) s.write(encodeFrame({ type: FrameType.WELCOME, payload: nilBomb(30_000_000) }));
    });
    const t0 = Date.now();
    const err = await connect(`127.0.0.1:${port}`, { maxReconnectAttempts: 0 }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(String(err?.message)).toMatch(/MB_ERR_FRAME_TOO_LARGE|exceeds|limit/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('a WELCOME within the size limit but of empty maps is refused before decoding (twelfth session: ~0.6 s of CPU per attempt)', async () => {
    /** {peers: [ {} x n ]}: one byte and one object each. */
    const mapBomb = (n: number): Buffer => {
      const b = nilBomb(n);
      b.fill(0x80, 12);
      return b;
    };
    /** {peers: ['xxx…']}: as many bytes, one string. */
    const plain = (n: number): Buffer => Buffer.from(encodeBody({ peers: ['x'.repeat(n)] }));
    const cpuOfAttempt = async (body: Buffer): Promise<{ us: number; code: unknown }> => {
      const port = await fakeNode((s, f) => {
        if (f.type === FrameType.HELLO) s.write(encodeFrame({ type: FrameType.WELCOME, payload: body }));
      });
      const t0 = process.cpuUsage();
      const err = await connect(`127.0.0.1:${port}`, { maxReconnectAttempts: 0 }).then(
        () => undefined,
        (e: unknown) => e as { code?: string; cause?: { code?: string } },
      );
      const t = process.cpuUsage(t0);
      return { us: t.user + t.system, code: err?.code };
    };
    const n = 3_500_000;
    const bombs: number[] = [];
    const bases: number[] = [];
    // The cheapest of 3 each: a ratio of the client's CPU, not a speed (before: ~1.25 s a bomb against 28-270 ms).
    for (let i = 0; i < 3; i++) {
      const bomb = await cpuOfAttempt(mapBomb(n));
      const base = await cpuOfAttempt(plain(n));
      expect([bomb.code, base.code]).toEqual(['MB_ERR_CONNECT_FAILED', 'MB_ERR_CONNECT_FAILED']);
      bombs.push(bomb.us);
      bases.push(base.us);
    }
    expect(Math.min(...bombs) / Math.min(...bases)).toBeLessThan(3);
  });

  it('a GOODBYE of 8 MB after WELCOME closes the connection as MB_ERR_FRAME_TOO_LARGE without decoding it', async () => {
    let node: net.Socket | undefined;
    const port = await fakeNode((s, f) => {
      if (f.type !== FrameType.HELLO || node) return;
      node = s;
      s.write(welcome([]));
    });
    const c = await client(port);
    const statuses: Status[] = [];
    c.on('status', (s) => void statuses.push(s));
    node!.write(encodeFrame({ type: FrameType.GOODBYE, payload: nilBomb(8_000_000) }));
    await until(() => statuses.some((s) => s.type === 'disconnected'), 'disconnected', 10_000);
    const d = statuses.find((s) => s.type === 'disconnected') as Extract<Status, { type: 'disconnected' }>;
    expect(d.error?.code).toBe('MB_ERR_FRAME_TOO_LARGE');
  });
});

describe('WebSocket messages from a node (Node entry, twelfth session)', () => {
  /**
   * A hostile ws:// server: answers HELLO with a WELCOME, then sends one
   * message of 90 MiB of zeros (~90 KB when permessage-deflate was
   * negotiated). Before, the Node entry offered permessage-deflate and took
   * messages up to ws's default 100 MiB: three such took a client from 64 to
   * 348 MB of RSS per connection. Now it offers deflate only with `wsDeflate`, and no
   * message past the frame it reads (MAX_FRAME, 64 MiB and headers) is held.
   */
  async function hostileWs(): Promise<{ url: string; offers: Array<string | undefined> }> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 } });
    await new Promise<void>((r) => wss.on('listening', () => r()));
    const offers: Array<string | undefined> = [];
    wss.on('connection', (ws, req) => {
      offers.push(req.headers['sec-websocket-extensions']);
      ws.on('error', () => {});
      ws.on('message', (m: Buffer) => {
        const d = new FrameDecoder();
        d.push(new Uint8Array(m), (f) => {
          if (f.type !== FrameType.HELLO) return;
          ws.send(welcome([]));
          setTimeout(() => ws.send(Buffer.alloc(90 * 1024 * 1024)), 50);
        }, () => {});
      });
    });
    cleanup.push(() => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close(() => r());
    }));
    return { url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`, offers };
  }

  for (const wsDeflate of [false, true]) {
    it(`a 90 MiB message is refused before it is handed over (wsDeflate: ${wsDeflate})`, async () => {
      const h = await hostileWs();
      const c = await connect(h.url, { wsDeflate, maxReconnectAttempts: 0 });
      cleanup.push(() => c.close().catch(() => {}));
      const statuses: Status[] = [];
      c.on('status', (s) => void statuses.push(s));
      await until(() => statuses.some((s) => s.type === 'disconnected' || s.type === 'closed'), 'disconnected', 20_000);
      expect(h.offers[0] !== undefined && h.offers[0].includes('permessage-deflate')).toBe(wsDeflate);
      const d = statuses.find((s) => s.type === 'disconnected' || s.type === 'closed') as { error?: { code?: string; message?: string } };
      // Never decoded as frames (zeros: MB_ERR_BAD_MAGIC): refused by size while it arrived.
      expect(d.error?.code).not.toBe('MB_ERR_BAD_MAGIC');
    });
  }
});

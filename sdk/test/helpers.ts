import net from 'node:net';
import { afterEach } from 'vitest';
import tls from 'node:tls';
import { WebSocketServer, type ServerOptions } from 'ws';
import type { Redis } from 'ioredis';
import { Frame, FrameDecoder, FrameType, encodeBody, encodeFrame } from '@meshbus/proto';
import { TcpTransport, connect, type Client, type Status, type Transport } from '../src/index.js';
import type { MeshNode } from '@meshbus/core';
import { WsGateway } from '@meshbus/core/ws';
import { freePort, spawnNode, tcpProxy as switchableProxy, until, url, type Fixture, type NodeProcess } from '@meshbus/testkit';

/** A client endpoint behind a proxy (downableEndpoints). */
export interface DownableEndpoint {
  name: 'TCP' | 'WebSocket';
  url: string;
  /** Ends the connections open through the proxy now. */
  cut(): void;
}

/**
 * A network that can go down: `n`'s TCP port and a WebSocket gateway of it
 * (started here), each behind a proxy that refuses new connections while
 * `net.down`; everything is closed with `fx`.
 */
export async function downableEndpoints(fx: Fixture, n: MeshNode): Promise<{ net: { down: boolean }; eps: DownableEndpoint[] }> {
  const gw = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
  fx.defer(() => gw.close());
  const net = { down: false };
  const eps: DownableEndpoint[] = [];
  for (const [name, port, at] of [
    ['TCP', n.port, (p: number) => url(p)],
    ['WebSocket', gw.port, (p: number) => `ws://127.0.0.1:${p}/`],
  ] as const) {
    const proxy = await switchableProxy(() => (net.down ? undefined : port));
    fx.defer(() => proxy.close());
    eps.push({ name, url: at(proxy.port), cut: () => proxy.cut() });
  }
  return { net, eps };
}

/** Records a client's status events. */
export function recordStatus(c: Client): Status[] {
  const got: Status[] = [];
  c.on('status', (s) => got.push(s));
  return got;
}

/** Waits for the next status event matching `pred`. */
export function nextStatus(c: Client, pred: (s: Status) => boolean, ms = 10_000): Promise<Status> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error('no matching status event'));
    }, ms);
    const off = c.on('status', (s) => {
      if (pred(s)) {
        clearTimeout(t);
        off();
        resolve(s);
      }
    });
  });
}

/**
 * A TCP proxy to `target`: `freeze()` silently stops forwarding in both
 * directions (a half-open connection: no FIN, no RST), `kill()` drops all.
 */
export async function tcpProxy(target: number): Promise<{ port: number; freeze(): void; kill(): void; close(): Promise<void> }> {
  let frozen = false;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((a) => {
    const b = net.connect(target, '127.0.0.1');
    const pair: [net.Socket, net.Socket] = [a, b];
    pairs.add(pair);
    a.on('data', (d) => {
      if (!frozen) b.write(d);
    });
    b.on('data', (d) => {
      if (!frozen) a.write(d);
    });
    const end = (): void => {
      a.destroy();
      b.destroy();
      pairs.delete(pair);
    };
    a.on('close', end).on('error', end);
    // Frozen, the node's close does not reach the client either (a half-open connection carries no FIN): the
    // node, finding the silent client stale first under load, closed it here, and the client saw
    // MB_ERR_CONNECTION_CLOSED instead of finding the connection stale itself (a flaky test).
    const nodeEnd = (): void => {
      if (!frozen) end();
    };
    b.on('close', nodeEnd).on('error', nodeEnd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    freeze: () => (frozen = true),
    kill: () => {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
    },
    close: () =>
      new Promise<void>((r) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => r());
      }),
  };
}

/**
 * A WebSocket endpoint bridged to a node's TCP port (the node has no
 * WebSocket gateway yet). Node→client bytes are re-framed so each WS
 * message carries whole frames, as the protocol requires. `tap` sees each
 * message the client sends, before it goes on to the node. `options`: the
 * server's permessage-deflate offer (off unless given).
 */
export async function wsBridge(target: number, tap?: (message: Buffer) => void, options: { perMessageDeflate?: ServerOptions['perMessageDeflate'] } = {}): Promise<{ port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => {
    const tcp = net.connect(target, '127.0.0.1');
    let buf = Buffer.alloc(0);
    tcp.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      let end = 0;
      while (buf.length - end >= 4) {
        const len = buf.readUInt32BE(end) + 4;
        if (buf.length - end < len) break;
        end += len;
      }
      if (end > 0) {
        ws.send(buf.subarray(0, end));
        buf = buf.subarray(end);
      }
    });
    ws.on('message', (d: Buffer) => {
      tap?.(d);
      tcp.write(d);
    });
    ws.on('close', () => tcp.destroy());
    tcp.on('close', () => ws.close());
    tcp.on('error', () => ws.close());
  });
  const port = (wss.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

/**
 * A TCP transport with hooks around `connect` and `send` (to record or to
 * inject faults); everything else is delegated unchanged.
 */
export function tapTransport(hooks: { connect?: (next: () => Promise<void>) => Promise<void>; send?: (chunks: Uint8Array[], next: () => void) => void }): Transport {
  const t = new TcpTransport();
  return {
    connect: (server, o) => (hooks.connect ? hooks.connect(() => t.connect(server, o)) : t.connect(server, o)),
    send: (chunks) => (hooks.send ? hooks.send(chunks, () => t.send(chunks)) : t.send(chunks)),
    set onData(f) {
      t.onData = f;
    },
    get onData() {
      return t.onData;
    },
    set onClose(f) {
      t.onClose = f;
    },
    get onClose() {
      return t.onClose;
    },
    close: () => t.close(),
    get pendingBytes() {
      return t.pendingBytes;
    },
  };
}

/**
 * A hostile node on ws://: answers each HELLO with a WELCOME of `body`
 * (a payload as is: the test picks its bytes) in one message; `onFrame`
 * hears the client's other frames, with a way to answer in one message.
 */
export async function hostileWsNode(body: Uint8Array, onFrame?: (f: Frame, send: (bytes: Uint8Array) => void) => void): Promise<{ port: number; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws) => {
    const d = new FrameDecoder();
    ws.on('message', (m: Buffer) => {
      d.push(
        new Uint8Array(m),
        (f) => {
          if (f.type === FrameType.HELLO) ws.send(encodeFrame({ type: FrameType.WELCOME, payload: body }));
          else onFrame?.(f, (bytes) => ws.send(bytes));
        },
        () => ws.terminate(),
      );
    });
  });
  return {
    port: (wss.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

/**
 * A well-formed WELCOME body with an unknown key `x` of `n` bytes: `n`
 * empty maps (an array of them: n + 1 maps and arrays), one string or one
 * byte string.
 * Unknown keys are ignored, so before the bundles counted maps and arrays the
 * first connected after decoding millions of objects.
 */
export function welcomeWithExtra(n: number, kind: 'empty maps' | 'string' | 'bytes'): Uint8Array {
  const head = encodeBody({ v: 1, node: '0123456789abcdef', client: 'fedcba9876543210', maxPayload: 1 << 20, maxTopic: 256, ping: 30_000, peers: [] });
  // The map's header grows by one key (msgpackr writes a map16: de 00 07).
  if (head[0] !== 0xde || head[1] !== 0 || head[2] !== 7) throw new Error('unexpected WELCOME map header');
  const key = Buffer.from([0xa1, 0x78]); // "x"
  let value: Buffer;
  if (kind === 'empty maps') {
    value = Buffer.alloc(5 + n, 0x80);
    value[0] = 0xdd; // array32
    value.writeUInt32BE(n, 1);
  } else {
    value = Buffer.alloc(5 + n, 0x78);
    value[0] = kind === 'string' ? 0xdb : 0xc6; // str32, bin32 (decoded as a view: what the bytes alone cost)
    value.writeUInt32BE(n, 1);
  }
  return Buffer.concat([Buffer.from([0xde, 0, 8]), head.subarray(3), key, value]);
}

/** A WELCOME as a fake node sends it (version 1, a 1 MiB payload limit, `peers`, `ping` ms). */
export const fakeWelcome = (peers: string[] = [], ping = 30_000): Uint8Array =>
  encodeFrame({ type: FrameType.WELCOME, payload: encodeBody({ v: 1, node: 'n', client: 'c0ffee', maxPayload: 1 << 20, maxTopic: 256, ping, peers }) });

/**
 * A fake node on loopback (plain TCP, or TLS with `tlsKeys`): `onFrame` answers each frame a client sends on its
 * socket (`conn`: which connection, from 1). `stop` ends its sockets and listener; `stopListening` refuses new ones.
 */
export async function fakeTcpNode(
  onFrame: (s: net.Socket, f: Frame, conn: number) => void,
  tlsKeys?: { cert: string; key: string },
): Promise<{ port: number; conns(): number; sockets: Set<net.Socket>; stopListening(): void; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  let conns = 0;
  const onSocket = (s: net.Socket): void => {
    const n = ++conns;
    sockets.add(s);
    const d = new FrameDecoder();
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.on('data', (c) => d.push(c, (f) => onFrame(s, f, n), () => s.destroy()));
  };
  const srv = tlsKeys ? tls.createServer(tlsKeys, onSocket) : net.createServer(onSocket);
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  let listening = true;
  const stopListening = (): Promise<void> =>
    new Promise<void>((r) => {
      if (!listening) return r();
      listening = false;
      srv.close(() => r());
    });
  return {
    port: (srv.address() as net.AddressInfo).port,
    conns: () => conns,
    sockets,
    stopListening: () => void stopListening(),
    async stop() {
      for (const s of sockets) s.destroy();
      await stopListening();
    },
  };
}

/** The payloads stored under `prefix` (every history stream of a node's durable store), in stream order. */
export async function storedPayloads(r: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const key of await r.keys(`${prefix}*`)) {
    if ((await r.type(key)) !== 'stream') continue;
    for (const [, fields] of await r.xrangeBuffer(key, '-', '+')) {
      for (let i = 0; i + 1 < fields.length; i += 2) {
        if (fields[i]!.toString() === 'f') out.push(Buffer.from(new Frame(fields[i + 1]!, 0, fields[i + 1]!.length).payload).toString());
      }
    }
  }
  return out;
}

/**
 * How the payloads "0" .. "n-1" are stored under `prefix` once all are (or
 * after 5 s): the first few stored twice, the first few missing, and the
 * count; `{ twice: [], missing: [], stored: n }` when each is stored once.
 */
export async function storedOnce(r: Redis, prefix: string, n: number): Promise<{ twice: string[]; missing: string[]; stored: number }> {
  await until(async () => (await storedPayloads(r, prefix)).length >= n, 'all stored', 5000).catch(() => undefined);
  const all = await storedPayloads(r, prefix);
  const seen = new Map<string, number>();
  for (const p of all) seen.set(p, (seen.get(p) ?? 0) + 1);
  const twice = [...seen].filter(([, k]) => k > 1).map(([p]) => p);
  const missing = [...Array(n).keys()].map(String).filter((p) => !seen.has(p));
  return { twice: twice.slice(0, 5), missing: missing.slice(0, 5), stored: all.length };
}

/**
 * A real node process (`meshbus start`, `extra` flags) with its WebSocket gateway on a known port, the URL a
 * client of `kind` uses, and a subscriber there counting the events of `topic` (flushed: subscribed). The
 * process and the subscriber are left to the caller's `procs` / `clients` teardown.
 */
/**
 * The node processes and clients a test file starts, stopped after each
 * test: clients closed, then each node continued (a test may have stopped
 * it with SIGSTOP) and killed.
 */
export function spawnedKit(): { procs: NodeProcess[]; clients: Client[] } {
  const procs: NodeProcess[] = [];
  const clients: Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const p of procs.splice(0)) {
      p.child.kill('SIGCONT');
      p.child.kill('SIGKILL');
      await p.exited;
    }
  });
  return { procs, clients };
}

export async function spawnedNodeWithCounter(
  kind: 'TCP' | 'WebSocket',
  topic: string,
  extra: string[],
  procs: NodeProcess[],
  clients: Client[],
): Promise<{ node: NodeProcess; url: string; got: () => number }> {
  const wsPort = await freePort();
  const node = await spawnNode({ extra: ['--ws-port', String(wsPort), ...extra] });
  procs.push(node);
  const at = kind === 'TCP' ? node.url : `ws://127.0.0.1:${wsPort}/`;
  const sub = await connect(at, { reconnect: false });
  clients.push(sub);
  let got = 0;
  sub.subscribe(topic, { callback: () => void got++ });
  await sub.flush();
  return { node, url: at, got: () => got };
}

/**
 * A proxy to `target` whose `slow` direction ('down': node to client, 'up':
 * client to node) carries at most `bytesPerSec`; `cut()` drops every
 * connection through it with what it still holds. Closed by `fx`'s teardown.
 */
export async function slowLink(fx: Fixture, target: number, slow: 'down' | 'up', bytesPerSec: number): Promise<{ port: number; cut(): void }> {
  const socks = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const node = net.connect(target, '127.0.0.1');
    socks.add(client).add(node);
    const [from, to] = slow === 'down' ? [node, client] : [client, node];
    to.pipe(from);
    const queue: Buffer[] = [];
    let queued = 0;
    from.on('data', (d: Buffer) => {
      queue.push(d);
      queued += d.length;
      if (queued > 64 * 1024) from.pause();
    });
    const TICK = 20;
    const timer = setInterval(() => {
      let budget = Math.floor((bytesPerSec * TICK) / 1000);
      while (budget > 0 && queue.length > 0) {
        const d = queue[0]!;
        const n = Math.min(budget, d.length);
        to.write(d.subarray(0, n));
        if (n === d.length) queue.shift();
        else queue[0] = d.subarray(n);
        queued -= n;
        budget -= n;
      }
      if (queued < 16 * 1024) from.resume();
    }, TICK);
    const end = (): void => {
      clearInterval(timer);
      client.destroy();
      node.destroy();
    };
    for (const s of [client, node]) s.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  fx.defer(
    () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  );
  const cut = (): void => {
    for (const s of socks) s.destroy();
  };
  return { port: (server.address() as net.AddressInfo).port, cut };
}

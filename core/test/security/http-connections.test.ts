import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { heldWithin, nodeKit, until } from '@meshbus/testkit';
import { ConfigError, startNode, type MeshNode } from '../../src/index.js';
import { startHttp, startHttpOnDemand, type HttpOptions } from '../../src/http/index.js';
import { WsGateway } from '../../src/ws/index.js';

/**
 * An unauthenticated host that holds HTTP connections open: keep-alive
 * connections refreshed by a probe request stay open for ever, and without a
 * bound one host could take every file descriptor of the process (the client
 * port then accepted and dropped every client).
 */

const kit = nodeKit({ start: startNode });

/** An answer read from a raw socket: status and body of its first response, once complete or closed. */
interface Held {
  socket: net.Socket;
  status: number;
  body: string;
  closed: boolean;
}

/** Opens a connection from `from` and sends a keep-alive GET `path`; resolves when the first response is complete or the connection closed. */
function hold(port: number, path = '/healthz', from = '127.0.0.1'): Promise<Held> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
    kit.defer(() => socket.destroy());
    const held: Held = { socket, status: 0, body: '', closed: false };
    let text = '';
    const done = (): void => {
      const at = text.indexOf('\r\n\r\n');
      held.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      held.body = at < 0 ? '' : text.slice(at + 4);
      resolve(held);
    };
    socket.on('error', () => {});
    socket.on('data', (b: Buffer) => {
      text += b.toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      const len = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      const chunked = /transfer-encoding: chunked/i.test(text);
      if (at >= 0 && ((len >= 0 && text.length >= at + 4 + len) || (chunked && text.endsWith('\r\n0\r\n\r\n')))) done();
    });
    socket.on('close', () => {
      held.closed = true;
      done();
    });
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

const codeOf = (h: Held): string | undefined => (JSON.parse(h.body || '{}') as { error?: { code: string } }).error?.code;

async function startApi(kind: 'startHttp' | 'onDemand', opts: HttpOptions = {}): Promise<{ node: MeshNode; port: number; accepted: net.Socket[]; open(): Promise<number> }> {
  const node = await kit.node();
  const o = { port: 0, host: '127.0.0.1', adminToken: 'admin-secret', ...opts };
  const h = kind === 'startHttp' ? await startHttp(node, o) : await startHttpOnDemand(node, o);
  kit.defer(() => h.close());
  // The node's side of each connection (startHttp's server).
  const accepted: net.Socket[] = [];
  if ('app' in h) h.app.server.on('connection', (s: net.Socket) => accepted.push(s));
  // Sockets the listener holds now, refused ones included (startHttp's server).
  const open = (): Promise<number> => new Promise((r) => ('app' in h ? h.app.server.getConnections((_e, n) => r(n)) : r(-1)));
  return { node, port: h.port, accepted, open };
}

describe('HTTP connections per host and per listener', () => {
  it('one host holds at most 64 connections by default; the next is refused 503 MB_ERR_TOO_MANY_CONNECTIONS, another host is not', async () => {
    const { port } = await startApi('startHttp');
    const held: Held[] = [];
    for (let i = 0; i < 64; i++) held.push(await hold(port));
    expect(held.every((h) => h.status === 200 && !h.closed)).toBe(true);

    const over = await hold(port, '/metrics');
    expect(over.status).toBe(503);
    expect(codeOf(over)).toBe('MB_ERR_TOO_MANY_CONNECTIONS');
    await until(() => over.closed, 'the refused connection closed', 5000);
    // Another host is not affected.
    expect((await hold(port, '/healthz', '127.0.0.2')).status).toBe(200);
    // The 64 are still served, on the same connections.
    held[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    // A closed connection frees its place.
    held[1]!.socket.destroy();
    await until(async () => (await hold(port)).status === 200, 'a place freed', 5000);
  });

  it('the on-demand listener (meshbus start) is bounded before anything loads, per host and in total; clients still connect', async () => {
    const { node, port } = await startApi('onDemand', { maxConnections: 4, maxConnectionsPerIp: 3 });
    const a = [await hold(port), await hold(port), await hold(port)];
    expect(a.map((h) => h.status)).toEqual([200, 200, 200]);
    const overHost = await hold(port);
    expect([overHost.status, codeOf(overHost)]).toEqual([503, 'MB_ERR_TOO_MANY_CONNECTIONS']);
    expect((await hold(port, '/healthz', '127.0.0.2')).status).toBe(200);
    const overAll = await hold(port, '/healthz', '127.0.0.3');
    expect([overAll.status, codeOf(overAll)]).toEqual([503, 'MB_ERR_TOO_MANY_CONNECTIONS']);
    const c = await kit.raw(node);
    expect(c.got[0]?.typeName).toBe('WELCOME');
  });

  it('closes a connection that pipelines past maxPipelined (default 8) without reading: its answers are not kept for it', async () => {
    const { port, accepted } = await startApi('startHttp');
    const request = 'GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    // Never reads: before, 20,000 of these held ~12 MB of heap for as long as the connection stayed open.
    const hoarder = net.connect(port, '127.0.0.1');
    kit.defer(() => hoarder.destroy());
    hoarder.pause();
    hoarder.on('error', () => {});
    hoarder.write(request.repeat(2000));
    await until(() => accepted.length === 1, 'the connection accepted', 5000);
    // The node lets go of it (the hoarder, not reading, does not see it).
    expect(await heldWithin(() => accepted[0]!.destroyed, 5000)).toBe(true);
    // Up to the bound, pipelined requests are answered in order.
    const reader = net.connect(port, '127.0.0.1');
    kit.defer(() => reader.destroy());
    let text = '';
    reader.on('data', (b: Buffer) => (text += b.toString('latin1')));
    reader.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(8));
    await until(() => (text.match(/HTTP\/1\.1 200/g) ?? []).length === 8, 'eight answers', 5000);
    expect(reader.destroyed).toBe(false);
  });

  it('holds at most maxConnections refused connections waiting for their 503: past it they are closed at once', async () => {
    const { port, open } = await startApi('startHttp', { maxConnections: 4, maxConnectionsPerIp: 1 });
    expect((await hold(port)).status).toBe(200);
    // Connections that never read nor close: each refusal lingered handshakeTimeout, holding a descriptor.
    let connected = 0;
    for (let i = 0; i < 60; i++) {
      const s = net.connect(port, '127.0.0.1', () => connected++);
      s.pause();
      s.on('error', () => {});
      kit.defer(() => s.destroy());
    }
    await until(() => connected === 60, 'all connected', 5000);
    expect(await heldWithin(async () => (await open()) <= 1 + 4, 2000)).toBe(true);
  });

  it('refuses bad bounds with ConfigError', async () => {
    const node = await kit.node();
    for (const bad of [{ maxConnections: 0 }, { maxConnectionsPerIp: -1 }, { maxConnectionsPerIp: 1.5 }, { maxPipelined: 0 }]) {
      await expect(startHttp(node, { port: 0, host: '127.0.0.1', ...bad })).rejects.toThrow(ConfigError);
      await expect(startHttpOnDemand(node, { port: 0, host: '127.0.0.1', ...bad })).rejects.toThrow(ConfigError);
    }
  });
});

describe('the WebSocket port before the upgrade', () => {
  it("plain keep-alive connections count against the node's maxConnectionsPerIp: past it a connection is refused 503", async () => {
    const node = await kit.node({ maxConnectionsPerIp: 3 });
    const g = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
    kit.defer(() => g.close());
    // Each is answered 426 and kept alive: before, a host held as many as it liked, uncounted.
    const plain = [await hold(g.port, '/'), await hold(g.port, '/'), await hold(g.port, '/')];
    expect(plain.map((h) => [h.status, h.closed])).toEqual([[426, false], [426, false], [426, false]]);
    const over = await hold(g.port, '/');
    expect([over.status, codeOf(over)]).toEqual([503, 'MB_ERR_TOO_MANY_CONNECTIONS']);
    // Another host still gets a WebSocket session.
    plain[0]!.socket.destroy();
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${g.port}/`, { localAddress: '127.0.0.2' });
    kit.defer(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
  });
});

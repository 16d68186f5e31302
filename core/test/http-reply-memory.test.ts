import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameType } from '@meshbus/proto';
import { nodeKit, type RawClient } from '@meshbus/testkit';
import { startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import type { HttpOptions } from '../src/http/index.js';
import { nodeWithHttp, parseProm } from './http-helpers.js';

// Replies to POST /v1/request that an HTTP client never reads (tmp-review-flow e3): held for ever and counted
// nowhere (20 connections × 8 pipelined 1 MiB replies: 101 MiB, meshbus_pending_bytes 0). Now counted
// (meshbus_http_reply_held_bytes), bounded node-wide and per connection (503 MB_ERR_SLOW_CONSUMER), and a
// connection whose socket takes nothing for writeDeadline while answer bytes wait is destroyed.

const kit = nodeKit({ start: startNode });
const MiB = 1024 * 1024;

/** A raw TCP responder on `topic` answering every request with `size` bytes. */
async function responder(node: MeshNode, topic: string, size: number): Promise<{ client: RawClient; answered: () => number }> {
  const client = await kit.raw(node);
  const reply = Buffer.alloc(size, 7);
  const decoder = new FrameDecoder({ maxFrameLength: 64 * MiB });
  let answered = 0;
  client.socket.on('data', (chunk: Buffer) =>
    decoder.push(
      chunk,
      (f) => {
        if (f.type !== FrameType.REQ || !f.ext?.reply) return;
        client.send({ type: FrameType.PUB, topic: f.ext.reply, correlation: f.correlation, payload: reply });
        answered++;
      },
      () => {},
    ),
  );
  client.sub(topic, 1);
  await client.flush();
  return { client, answered: () => answered };
}

const request = (topic: string): string =>
  `POST /v1/request/${topic}?timeout=20000 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\ncontent-length: 2\r\n\r\nhi`;

/** A connection that sends `n` pipelined requests and never reads; `closed` resolves with when the node cut it. */
async function nonReader(port: number, topic: string, n: number): Promise<{ socket: net.Socket; closed: Promise<number> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise((r) => socket.once('connect', r));
  socket.pause();
  const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
  socket.write(request(topic).repeat(n));
  kit.defer(() => void socket.destroy());
  return { socket, closed };
}

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

async function setup(nodeOpts: NodeOptions, httpOpts: HttpOptions = {}) {
  return nodeWithHttp(kit, nodeOpts, httpOpts);
}

/** A full GC (the test process runs without --expose-gc). */
function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

const stats = (node: MeshNode): { heldBytes: number; refused: number; cut: number } =>
  (node.stats as unknown as { httpReplies?: { heldBytes: number; refused: number; cut: number } }).httpReplies ?? { heldBytes: NaN, refused: NaN, cut: NaN };

describe('HTTP answers a client does not read', () => {
  it('a connection pipelining requests whose big replies it never reads is destroyed within writeDeadline, and counted', async () => {
    const { node, http } = await setup({ maxPayload: 8 * MiB, writeDeadline: 1000 });
    const svc = await responder(node, 'svc', 6 * MiB);
    const t0 = Date.now();
    const c = await nonReader(http.port, 'svc', 4);
    // Old code: the replies stayed held for ever (the review watched 160 s); a wide margin over the 1 s deadline.
    const cut = await until(() => stats(node).cut >= 1, 12_000);
    expect(svc.answered()).toBeGreaterThanOrEqual(1);
    expect(cut).toBe(true);
    expect(Date.now() - t0).toBeLessThan(12_000);
    // The client sees the end once it reads what the kernel had taken.
    c.socket.resume();
    expect(await Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))])).toBe(true);
    expect(stats(node).cut).toBe(1);
    // Nothing stays counted once the connection is gone.
    expect(await until(() => stats(node).heldBytes === 0, 2000)).toBe(true);
    const m = parseProm(await (await fetch(`${http.url}/metrics`)).text());
    expect(m.get('meshbus_http_connections_cut_total')).toBe(1);
    expect(m.get('meshbus_http_reply_held_bytes')).toBeLessThan(64 * 1024);
  }, 20_000);

  it('replies held for connections that do not read are counted node-wide and bounded: past the bound 503 MB_ERR_SLOW_CONSUMER', async () => {
    // No cut during the test: what is held is what the bound must limit.
    // The bound is the node's inputBudget (~134 MB here: 4 of its largest frames); 13 MiB replies, two connections more than fit.
    const { node, http } = await setup({ maxPayload: 16 * MiB, writeDeadline: 60_000 });
    const limit = node.options.inputBudget;
    await responder(node, 'svc', 13 * MiB);
    const n = Math.ceil(limit / (13 * MiB)) + 2;
    const held: Array<Awaited<ReturnType<typeof nonReader>>> = [];
    for (let i = 0; i < n; i++) held.push(await nonReader(http.port, 'svc', 1));
    // Every request answered by the responder, answers written out or refused.
    expect(await until(() => http.stats.requests.ok + http.stats.requests.failed >= n, 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const s = stats(node);
    // Old code: nothing counted (the review: meshbus_pending_bytes 0 with 101 MiB held).
    expect(s.heldBytes).toBeGreaterThan(12 * MiB);
    expect(s.heldBytes).toBeLessThanOrEqual(limit + 64 * 1024);
    expect(s.refused).toBeGreaterThanOrEqual(1);
    const m = parseProm(await (await fetch(`${http.url}/metrics`)).text());
    expect(m.get('meshbus_http_reply_held_bytes')).toBe(s.heldBytes);
    expect(m.get('meshbus_http_reply_limit_bytes')).toBe(limit);
    // A client that does read is refused too while the bound is reached: typed, in the API's error format.
    const r = await fetch(`${http.url}/v1/request/svc?timeout=5000`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    expect(r.status).toBe(503);
    expect((await r.json()).error.code).toBe('MB_ERR_SLOW_CONSUMER');
    // /v1/stats shows it beside the other counters.
    const v = (await (await fetch(`${http.url}/v1/stats`)).json()) as { counters: { httpReplies: { heldBytes: number } } };
    expect(v.counters.httpReplies.heldBytes).toBeGreaterThan(12 * MiB);
    // The holders gone, nothing stays counted.
    for (const h of held) h.socket.destroy();
    expect(await until(() => stats(node).heldBytes < 64 * 1024, 3000)).toBe(true);
  }, 20_000);

  it('answers pipelined behind one the client never read are freed when the connection is cut (they were kept by the close wait)', async () => {
    const { node, http } = await setup({ maxPayload: 8 * MiB, writeDeadline: 500 });
    const alive: Array<WeakRef<object>> = [];
    http.app.server.on('request', (_req: unknown, res: object) => void alive.push(new WeakRef(res)));
    await responder(node, 'svc', 1 * MiB);
    const conns = [];
    for (let i = 0; i < 4; i++) conns.push(await nonReader(http.port, 'svc', 8));
    expect(await until(() => stats(node).cut >= 1 && stats(node).heldBytes === 0, 12_000)).toBe(true);
    expect(alive.length).toBeGreaterThan(4);
    for (const c of conns) c.socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 3; i++) {
      fullGc();
      await new Promise((r) => setTimeout(r, 50));
    }
    // Old code: every answer queued behind an unread one stayed reachable (WaitingCalls waited for a 'close' that never came), its 1 MiB body with it.
    expect(alive.filter((w) => w.deref() !== undefined).length).toBe(0);
  }, 20_000);

  it('one connection holds at most maxPending of answers: pipelined replies past it are refused, not held', async () => {
    const { node, http } = await setup({ maxPayload: 8 * MiB, maxPending: 8 * MiB, writeDeadline: 60_000 });
    const svc = await responder(node, 'svc', 6 * MiB);
    await nonReader(http.port, 'svc', 6);
    // The first request is answered; the connection's later ones wait behind it or are refused.
    expect(await until(() => svc.answered() >= 1 && stats(node).refused >= 1, 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    // Old code: 6 × 6 MiB held for the one connection.
    expect(stats(node).heldBytes).toBeLessThanOrEqual(8 * MiB + 64 * 1024);
  }, 20_000);
});

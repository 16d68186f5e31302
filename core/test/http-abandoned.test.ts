import net from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { nodeKit, type RawClient } from '@meshbus/testkit';
import { startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import type { HttpOptions } from '../src/http/index.js';
import { nodeWithHttp, parseProm } from './http-helpers.js';

// Calls of the HTTP API that wait (POST /v1/request for its reply, /v1/trace for its wait, GET /v1/mesh for the
// mesh's figures) kept waiting after their caller hung up, with the request body, counted nowhere
// (tmp-review-mem 02/09/trace-interest: 400 abandoned 1 MiB requests, +427 MB for 60 s; 2,000 abandoned traces,
// 2,000 `_TRACE.<id>` subscriptions on every peer for 30 s). Now a call is given up when its caller goes, the body
// is not held while a call waits, waiting calls are bounded node-wide, and GET /v1/subscriptions is paged.

const kit = nodeKit({ start: startNode });
const MiB = 1024 * 1024;

const setup = (nodeOpts: NodeOptions = {}, httpOpts: HttpOptions = {}) => nodeWithHttp(kit, nodeOpts, httpOpts);

async function until(pred: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** A raw connection that writes `head` (and `body`) and is left open until the test destroys it. */
async function caller(port: number, head: string, body?: Buffer): Promise<net.Socket> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise((r) => s.once('connect', r));
  s.write(head);
  if (body) s.write(body);
  kit.defer(() => void s.destroy());
  return s;
}

const post = (path: string, length: number): string =>
  `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/octet-stream\r\ncontent-length: ${length}\r\n\r\n`;

/** A subscriber on `topic` that never answers. */
async function silent(node: MeshNode, topic: string): Promise<RawClient> {
  const c = await kit.raw(node);
  c.sub(topic, 1);
  await c.flush();
  return c;
}

const events = (c: RawClient): number => c.got.filter((g) => g.type === FrameType.REQ || g.type === FrameType.PUB).length;

const metrics = async (url: string) => parseProm(await (await fetch(`${url}/metrics`)).text());

function fullGc(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe('HTTP calls whose caller went', () => {
  it('POST /v1/request: the wait ends when the caller closes (a late reply is refused), counted as abandoned', async () => {
    const { node, http } = await setup({}, { metricsMinInterval: 0 });
    const responder = await silent(node, 'svc.slow');
    const s = await caller(http.port, post('/v1/request/svc.slow?timeout=60000', 2) + 'hi');
    expect(await until(() => events(responder) === 1)).toBe(true);
    const req = responder.got.find((g) => g.type === FrameType.REQ)!;
    s.destroy();
    // Given up at once: nothing waits any more.
    expect(await until(async () => (await metrics(http.url)).get('meshbus_http_waiting_calls') === 0)).toBe(true);
    const m = await metrics(http.url);
    expect(m.get('meshbus_http_requests_total', { outcome: 'abandoned' })).toBe(1);
    // The reply that comes now answers no request in flight: refused, not taken for a caller that left.
    responder.send({ type: FrameType.PUB, topic: req.reply!, correlation: req.correlation, payload: Buffer.from('late') });
    expect(await until(() => http.stats.repliesDropped.unknownToken === 1)).toBe(true);
  });

  it('POST /v1/request: a body is not held while its request waits for the reply', async () => {
    // maxPending above the 40 MiB of requests, so the responder (read by this busy test process) never nears its
    // bound: without it the 20 s wait for the 40 events timed out in about 1 run in 10, here and in CI, on this
    // session's code and on the code before it (the cause was not pinned down; 0 of 15 runs with it).
    const { node, http } = await setup({ maxPayload: 2 * MiB, inputBudget: 256 * MiB, maxPending: 64 * MiB });
    const responder = await silent(node, 'svc.slow');
    const N = 40;
    const body = Buffer.alloc(MiB, 0x61);
    fullGc();
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < N; i++) await caller(http.port, post('/v1/request/svc.slow?timeout=60000', body.length), body);
    expect(await until(() => events(responder) === N, 20_000)).toBe(true);
    // The test's own copies of the events go; the node's are what is left.
    responder.got.length = 0;
    const held = (): number => {
      fullGc();
      return process.memoryUsage().arrayBuffers - before;
    };
    // Before: N × 1 MiB held until the timeout (a minute). Writes still completing toward the responder go within
    // moments; a few MiB of socket and parser buffers may remain.
    const ok = await until(() => held() < N * MiB * 0.25);
    expect(ok ? 'not held' : `${held()} bytes held`).toBe('not held');
  });

  it('POST /v1/trace: the wait ends and its _TRACE subscription and id are given up when the caller closes', async () => {
    const { node, http } = await setup();
    const traces = (): number => {
      let n = 0;
      node.table.forEach((sub) => void (sub.pattern.startsWith('_TRACE.') && n++));
      return n;
    };
    const s = await caller(http.port, post('/v1/trace/x.y?wait=30000', 0));
    expect(await until(() => traces() === 1)).toBe(true);
    s.destroy();
    // Before: held (and announced to every peer) for the whole 30 s wait.
    expect(await until(() => traces() === 0 && node.traces.size === 0)).toBe(true);
  });

  it('GET /v1/mesh: the questions to other nodes are given up when the caller closes', async () => {
    const { node, http } = await setup({}, { metricsMinInterval: 0 });
    // A peer the view names whose stats topic has a receiver that never answers: the mesh view waits for it.
    const peer = 'f'.repeat(16);
    const mute = node.subscribeInternal(`_INBOX.${peer}.dash.stats`, () => {}, { label: 'mute peer' });
    kit.defer(() => mute.unsubscribe());
    http.attachCluster({ ready: () => true, peers: () => [{ id: peer, address: '127.0.0.1:1', state: 'up', since: Date.now(), msgsIn: 0, msgsOut: 0 }] });
    const s = await caller(http.port, 'GET /v1/mesh HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    expect(await until(async () => (await metrics(http.url)).get('meshbus_http_waiting_calls') === 1)).toBe(true);
    s.destroy();
    expect(await until(async () => (await metrics(http.url)).get('meshbus_http_waiting_calls') === 0, 1000)).toBe(true);
  });

  it('GET /v1/workers: the wait for the workers\' figures ends when the caller closes', async () => {
    let asked = 0;
    // Workers that never answer (the primary's gather waits up to 4 s).
    const workers = (): Promise<unknown[]> => {
      asked++;
      return new Promise<unknown[]>(() => {});
    };
    const { http } = await setup({}, { workers, metricsMinInterval: 0 });
    const s = await caller(http.port, 'GET /v1/workers HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n');
    expect(await until(async () => asked === 1 && (await metrics(http.url)).get('meshbus_http_waiting_calls') === 1)).toBe(true);
    s.destroy();
    expect(await until(async () => (await metrics(http.url)).get('meshbus_http_waiting_calls') === 0, 1000)).toBe(true);
  });

  it('waiting calls are bounded node-wide: past maxWaiting 503 MB_ERR_TOO_MANY_CONNECTIONS, shown in /v1/node and /metrics', async () => {
    const { node, http } = await setup({}, { maxWaiting: 2, metricsMinInterval: 0 });
    const responder = await silent(node, 'svc.slow');
    await caller(http.port, post('/v1/request/svc.slow?timeout=20000', 0));
    await caller(http.port, post('/v1/trace/x.y?wait=20000', 0));
    expect(await until(() => events(responder) === 1)).toBe(true);
    const third = await fetch(`${http.url}/v1/request/svc.slow?timeout=1000`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
    const answer = (await third.json()) as { error: { code: string } };
    expect([third.status, answer.error.code]).toEqual([503, 'MB_ERR_TOO_MANY_CONNECTIONS']);
    const v = (await (await fetch(`${http.url}/v1/node`)).json()) as { httpWaiting: number; limits: { httpMaxWaiting: number } };
    expect([v.httpWaiting, v.limits.httpMaxWaiting]).toEqual([2, 2]);
    const m = await metrics(http.url);
    expect([m.get('meshbus_http_waiting_calls'), m.get('meshbus_http_waiting_calls_limit'), m.get('meshbus_http_waiting_refused_total')]).toEqual([2, 2, 1]);
  });
});

describe('list views a page at a time', () => {
  it('GET /v1/subscriptions?offset=&limit= answers one page of patterns, most used first, with the totals', async () => {
    const { node, http } = await setup();
    const c = await kit.raw(node);
    let sid = 1;
    for (let p = 0; p < 5; p++) for (let k = 0; k <= p; k++) c.sub(`p${p}.x`, sid++);
    await c.flush();
    const v = (await (await fetch(`${http.url}/v1/subscriptions?offset=1&limit=2`)).json()) as { total: number; patternsTotal: number; offset: number; limit: number; patterns: Array<{ pattern: string; count: number }> };
    expect(v).toMatchObject({ total: 15, patternsTotal: 5, offset: 1, limit: 2 });
    expect(v.patterns.map((p) => [p.pattern, p.count])).toEqual([
      ['p3.x', 4],
      ['p2.x', 3],
    ]);
    const first = (await (await fetch(`${http.url}/v1/subscriptions`)).json()) as { limit: number };
    expect(first.limit).toBe(100);
    const bad = await fetch(`${http.url}/v1/subscriptions?limit=1001`);
    expect(bad.status).toBe(400);
  });
});

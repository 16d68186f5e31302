import { afterEach, describe, expect, it } from 'vitest';
import { RawClient, requireRedisServer, startRedisServer, sleep } from '@meshbus/testkit';
import { silentLogger, startNode, type DurableOptions } from '../src/index.js';
import { startHttp } from '../src/http/index.js';

/**
 * `POST /v1/publish` on a durable topic is answered as a client's acked PUB
 * (SPEC 15.8, core README "HTTP API"): 200 with the event's position once the
 * store has it, or the store's refusal, the event neither stored nor
 * delivered. Review of 2026-12-04: the route answered 200 `{ receivers: 1 }`
 * at once, while the write was under way, so an event Redis never stored
 * (Redis killed; a payload past the quota's maxEventBytes) was answered as
 * taken: 1 of 2 delivered with Redis down, 0 of 1 over the quota, while the
 * same PUB over TCP with ACK_REQUESTED was NACKed. Each test runs its own
 * redis-server (one is killed).
 */
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const body = (n: number): Uint8Array => new Uint8Array(n).fill(7);
const post = (url: string, topic: string, payload: Uint8Array): Promise<Response> =>
  fetch(`${url}/v1/publish/${topic}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: payload });

async function setUp(durable: Omit<DurableOptions, 'redis'>) {
  const server = await startRedisServer();
  cleanups.push(() => server.stop());
  const n = await startNode({ port: 0, logger: silentLogger, durable: { redis: server.url, ...durable } });
  cleanups.push(() => n.close());
  const http = await startHttp(n, { port: 0, host: '127.0.0.1' });
  cleanups.push(() => http.close());
  const sub = await RawClient.connect(n.port);
  cleanups.push(() => sub.close());
  sub.sub('h.>', 1);
  sub.sub('plain.>', 2);
  await sub.flush();
  return { server, n, http, sub };
}

describe('POST /v1/publish on a durable topic', () => {
  it('answers once the store has the event, with its position; a plain topic at once, without one', async (ctx) => {
    requireRedisServer(ctx);
    const { http, sub } = await setUp({ prefix: 'ha:', topics: [{ pattern: 'h.>', history: { size: 10 } }] });
    const r = await post(http.url, 'h.a', body(10));
    expect(r.status).toBe(200);
    const a = (await r.json()) as { topic: string; receivers: number; position?: { epoch: string; offset: number } };
    expect(a.receivers).toBe(1);
    expect(a.position?.offset).toBe(1);
    expect(typeof a.position?.epoch).toBe('string');
    const p = await post(http.url, 'plain.a', body(10));
    expect(p.status).toBe(200);
    expect(await p.json()).toEqual({ topic: 'plain.a', receivers: 1 });
    await sub.waitUntil(() => sub.events().length === 2, 'both events');
  });

  it('Redis down: 503 MB_ERR_STORE_UNAVAILABLE, and the event is not delivered', async (ctx) => {
    requireRedisServer(ctx);
    const { server, http, sub } = await setUp({ prefix: 'hb:', topics: [{ pattern: 'h.>', history: { size: 10 } }] });
    expect((await post(http.url, 'h.a', body(10))).status).toBe(200);
    await server.kill();
    const r = await post(http.url, 'h.a', body(10));
    // Before: 200 { receivers: 1 } in ~5 ms.
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('MB_ERR_STORE_UNAVAILABLE');
    await sleep(300);
    expect(sub.events('h.a')).toHaveLength(1);
  }, 30_000);

  it('past a store quota: 507 MB_ERR_STORE_FULL, not delivered; one at the bound is stored', async (ctx) => {
    requireRedisServer(ctx);
    const { http, sub } = await setUp({ prefix: 'hc:', topics: [{ pattern: 'h.>', history: { size: 10 } }], quota: { maxEventBytes: 100 } });
    const r = await post(http.url, 'h.big', body(1000));
    // Before: 200 { receivers: 1 }, and nothing delivered.
    expect(r.status).toBe(507);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('MB_ERR_STORE_FULL');
    expect((await post(http.url, 'h.ok', body(100))).status).toBe(200);
    await sub.waitUntil(() => sub.events('h.ok').length === 1, 'the event at the bound');
    expect(sub.events('h.big')).toHaveLength(0);
  });
});

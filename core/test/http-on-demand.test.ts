import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { freePort, nodeKit, until } from '@meshbus/testkit';
import { ConfigError } from '../src/index.js';
import { startHttpOnDemand, type OnDemandHttpServer } from '../src/http/index.js';

// Issue #15 footprint: `meshbus start` serves its HTTP API with
// startHttpOnDemand, which listens at once and loads fastify, the plugin and
// prom-client on the first request. These tests hold it to startHttp's
// behaviour: same answers (the first request included), same option checks,
// same close.

const kit = nodeKit();

async function onDemand(opts: Parameters<typeof startHttpOnDemand>[1] = {}): Promise<{ h: OnDemandHttpServer; node: Awaited<ReturnType<typeof kit.node>> }> {
  const node = await kit.node();
  const h = await startHttpOnDemand(node, { port: 0, host: '127.0.0.1', ...opts });
  kit.defer(() => h.close());
  return { h, node };
}

describe('startHttpOnDemand', () => {
  it('listens without the API loaded; requests that arrive together while it loads are all answered, in full', async () => {
    const { h, node } = await onDemand();
    expect(h.loaded).toBeUndefined();
    expect(h.url).toBe(`http://127.0.0.1:${h.port}`);
    // Several requests, one with a body, before anything has loaded.
    const [health, stats, pub] = await Promise.all([
      fetch(`${h.url}/healthz`),
      fetch(`${h.url}/v1/stats`),
      fetch(`${h.url}/v1/publish/a.b`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'hello' }),
    ]);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok', id: node.id });
    expect(stats.status).toBe(200);
    expect((await stats.json()) as object).toHaveProperty('connections');
    expect(pub.status).toBeLessThan(300);
    expect(h.loaded).toBeDefined();
    expect(node.stats.msgsIn).toBeGreaterThanOrEqual(1);
    // Afterwards every request is the loaded app's.
    expect((await fetch(`${h.url}/v1/nope`)).status).toBe(404);
  });

  it('samples the rate history from start-up, before any request loads the API', async () => {
    const { h } = await onDemand();
    await until(() => h.history.list().length >= 1, 'a first rate sample');
    expect(h.loaded).toBeUndefined();
    const body = (await (await fetch(`${h.url}/v1/stats/history`)).json()) as { samples: unknown[] };
    expect(body.samples.length).toBeGreaterThanOrEqual(1);
  });

  it('load() loads the API without a request and gives the same server the first request uses', async () => {
    const { h } = await onDemand();
    const api = await h.load();
    expect(h.loaded).toBe(api);
    expect(await h.load()).toBe(api);
    expect(api.port).toBe(h.port);
    expect(api.history).toBe(h.history);
    expect((await api.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await fetch(`${h.url}/metrics`)).status).toBe(200);
  });

  it('checks options and the port at start, as startHttp', async () => {
    const node = await kit.node();
    await expect(startHttpOnDemand(node, { port: 0, host: '127.0.0.1', requestTimeout: -1 })).rejects.toBeInstanceOf(ConfigError);
    await expect(startHttpOnDemand(node, { port: 70000 })).rejects.toBeInstanceOf(ConfigError);
    const tokenNode = await kit.node({ token: 'secret' });
    await expect(startHttpOnDemand(tokenNode, { port: 0, host: '127.0.0.1' })).rejects.toThrow(/admin token/);
    const { h } = await onDemand();
    await expect(startHttpOnDemand(node, { port: h.port, host: '127.0.0.1' })).rejects.toThrow(/already in use/);
  });

  it('closes before and after loading, and frees the port', async () => {
    const node = await kit.node();
    const port = await freePort();
    const a = await startHttpOnDemand(node, { port, host: '127.0.0.1' });
    await a.close();
    const b = await startHttpOnDemand(node, { port, host: '127.0.0.1' });
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
    await b.close();
    await b.close();
    const c = await startHttpOnDemand(node, { port, host: '127.0.0.1' });
    await c.close();
  });

  it('closes while the first request is still loading the API: that request gets an answer or a closed connection, never a hang', async () => {
    const { h } = await onDemand();
    let connected = false;
    const done = new Promise<string>((resolve) => {
      const req = httpRequest(`${h.url}/healthz`, (res) => {
        res.resume();
        res.on('end', () => resolve(`status ${res.statusCode}`));
      });
      req.on('error', (e) => resolve(`error ${e.message}`));
      req.on('socket', (sock) => sock.once('connect', () => (connected = true)));
      req.end();
    });
    await until(() => connected, 'the request to be sent');
    await h.close();
    expect(await done).toMatch(/^(status \d+|error )/);
  });
});

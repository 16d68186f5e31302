import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { RawClient } from '@meshbus/testkit';
import { ConfigError, silentLogger, startNode, type MeshNode, type NodeOptions } from '../src/index.js';
import { meshbusHttp, type MeshbusHttpApi } from '../src/http/index.js';

// Issue #15: the HTTP API is a fastify plugin a user mounts in their own
// fastify app, under a prefix of their choice, beside their own routes.

const nodes: MeshNode[] = [];
const apps: FastifyInstance[] = [];
const clients: RawClient[] = [];

async function userApp(nodeOpts: NodeOptions = {}, prefix = '/meshbus', adminToken?: string): Promise<{ node: MeshNode; app: FastifyInstance; api: MeshbusHttpApi }> {
  const node = await startNode({ port: 0, logger: silentLogger, ...nodeOpts });
  nodes.push(node);
  const app = Fastify();
  apps.push(app);
  // The user's own route and content-type handling, which the plugin must leave alone.
  app.get('/mine', async () => ({ mine: true }));
  app.post('/echo', async (req) => req.body);
  let api: MeshbusHttpApi | undefined;
  await app.register(meshbusHttp, { node, prefix, adminToken, onApi: (a) => (api = a) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { node, app, api: api! };
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const a of apps.splice(0)) await a.close();
  for (const n of nodes.splice(0)) await n.close();
});

describe('meshbusHttp mounted in a user fastify app', () => {
  it('serves the API under the prefix and leaves the app’s own routes and parsers alone', async () => {
    const { node, app } = await userApp();
    expect((await app.inject({ method: 'GET', url: '/meshbus/healthz' })).json()).toEqual({ status: 'ok', id: node.id });
    expect((await app.inject({ method: 'GET', url: '/mine' })).json()).toEqual({ mine: true });
    // The app's JSON parser still applies outside the plugin.
    const echo = await app.inject({ method: 'POST', url: '/echo', payload: { a: 1 } });
    expect(echo.json()).toEqual({ a: 1 });
    // Unknown paths under the prefix answer the API's typed 404; outside it, fastify's own.
    const nf = await app.inject({ method: 'GET', url: '/meshbus/nope' });
    expect(nf.statusCode).toBe(404);
    expect(nf.json().error.code).toBe('MB_ERR_NOT_FOUND');
    const stats = (await app.inject({ method: 'GET', url: '/meshbus/v1/node' })).json();
    expect(stats.id).toBe(node.id);
  });

  it('publishes through the prefixed route to a real TCP subscriber', async () => {
    const { node, app } = await userApp();
    const c = await RawClient.connect(node.port);
    clients.push(c);
    c.sub('plug.a', 1);
    await c.flush();
    const r = await app.inject({ method: 'POST', url: '/meshbus/v1/publish/plug.a', headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from('hi') });
    expect(r.statusCode).toBeLessThan(300);
    const e = await c.waitFor((g) => g.topic === 'plug.a');
    expect(Buffer.from(e.payload).toString()).toBe('hi');
  });

  it('keeps the admin token rule under a prefix: probes and the page open, the rest needs the token', async () => {
    const { app } = await userApp({}, '/mb', 's3cret');
    for (const url of ['/mb/healthz', '/mb/readyz', '/mb/metrics', '/mb', '/mb/dashboard']) {
      const r = await app.inject({ method: 'GET', url });
      expect(r.statusCode, url).not.toBe(401);
    }
    expect((await app.inject({ method: 'GET', url: '/mb/v1/node' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/mb/v1/node', headers: { authorization: 'Bearer s3cret' } })).statusCode).toBe(200);
    // Unknown paths under the prefix: 401 before 404 (nothing revealed).
    expect((await app.inject({ method: 'GET', url: '/mb/v1/nothing' })).statusCode).toBe(401);
    // A route of the app's own named like an open API route is not the API's: the prefix is part of the rule.
    expect((await app.inject({ method: 'GET', url: '/mine' })).statusCode).toBe(200);
  });

  it('the dashboard page calls the API under its prefix', async () => {
    const { app } = await userApp({}, '/ops/meshbus');
    const page = (await app.inject({ method: 'GET', url: '/ops/meshbus/dashboard' })).body;
    expect(page).toContain(`var BASE = "/ops/meshbus";`);
    expect(page).not.toContain('__MESHBUS_BASE__');
  });

  it('refuses to mount open (no admin token) on a node that requires client tokens', async () => {
    const node = await startNode({ port: 0, logger: silentLogger, token: 'client-secret' });
    nodes.push(node);
    const app = Fastify();
    apps.push(app);
    await expect(app.register(meshbusHttp, { node }).ready()).rejects.toBeInstanceOf(ConfigError);
  });
});

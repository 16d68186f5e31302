import { describe, expect, it } from 'vitest';
import { nodeKit } from '@meshbus/testkit';
import { startNode, type MeshNode } from '../../src/index.js';
import { startHttp, startHttpOnDemand, type HttpOptions } from '../../src/http/index.js';
import { EventTap, rawHttp } from '../http-helpers.js';

/**
 * DNS rebinding against an open HTTP API (no admin token, on loopback, as
 * `meshbus start` runs it by default). A page of evil.example whose name is
 * made to resolve to 127.0.0.1 is same-origin with the API for the browser:
 * its requests carry `Host: evil.example:<port>` and, on POST, the matching
 * `Origin`, so the Origin and content-type rules let them through. Before,
 * such a page read /v1/connections and /v1/subscriptions and published; now
 * an open API answers only Host names of this machine.
 */

const kit = nodeKit({ start: startNode });

/** A request as a browser on a rebound page (or curl) sends it, with the given Host. */
function request(method: 'GET' | 'POST', target: string, host: string, post = false): string {
  const lines = [`${method} ${target} HTTP/1.1`, 'Connection: close'];
  lines.push(`Host: ${host}`);
  if (post) lines.push(`Origin: http://${host}`, 'Content-Type: application/json', 'Content-Length: 7');
  return `${lines.join('\r\n')}\r\n\r\n${post ? '{"a":1}' : ''}`;
}

type Start = (node: MeshNode, o: HttpOptions) => Promise<{ port: number; close(): Promise<void> }>;

async function attack(start: Start, o: HttpOptions = {}): Promise<{ foreign: number[]; local: number[]; published: number }> {
  const node = await kit.node();
  const http = await start(node, { port: 0, host: '127.0.0.1', ...o });
  kit.defer(() => http.close());
  const sub = await kit.raw(node);
  const tap = new EventTap(sub);
  sub.sub('x.>', 1);
  await sub.flush();
  const foreign: number[] = [];
  for (const host of [`evil.example:${http.port}`, 'evil.example', `127.0.0.1.evil.example:${http.port}`, `localhost.evil.example:${http.port}`, `[::1].evil.example`]) {
    for (const path of ['/v1/connections', '/v1/subscriptions', '/v1/node', '/metrics', '/']) {
      foreign.push((await rawHttp(http.port, request('GET', path, host))).status);
    }
    foreign.push((await rawHttp(http.port, request('POST', '/v1/publish/x.rebound', host, true))).status);
  }
  await sub.flush();
  const published = tap.events.length;
  const local: number[] = [];
  for (const host of [`127.0.0.1:${http.port}`, `localhost:${http.port}`, 'LOCALHOST', `app.localhost:${http.port}`, `[::1]:${http.port}`, '127.0.0.2']) {
    local.push((await rawHttp(http.port, request('GET', '/v1/connections', host))).status);
    local.push((await rawHttp(http.port, request('POST', '/v1/publish/x.local', host, true))).status);
  }
  return { foreign, local, published };
}

describe('an open HTTP API answers only Host names of this machine (DNS rebinding)', () => {
  for (const [name, start] of [
    ['startHttp', startHttp],
    ['startHttpOnDemand (meshbus start)', startHttpOnDemand],
  ] as Array<[string, Start]>) {
    it(`${name}: a rebound page reads and publishes nothing`, async () => {
      const r = await attack(start);
      expect(r.foreign).toEqual(r.foreign.map(() => 403));
      expect(r.foreign).toHaveLength(30);
      expect(r.published).toBe(0);
      expect(r.local).toEqual(r.local.map(() => 200));
    });
  }

  it('with an admin token (the token decides) or insecureOpenAdmin (the operator chose) any Host is answered', async () => {
    const open = await attack(startHttp, { insecureOpenAdmin: true });
    expect(open.foreign).toEqual(open.foreign.map(() => 200));
    const node = await kit.node();
    const http = await startHttp(node, { port: 0, host: '127.0.0.1', adminToken: 'T0ken' });
    kit.defer(() => http.close());
    const r = await rawHttp(http.port, request('GET', '/v1/node', `evil.example:${http.port}`).replace('Connection: close', 'Connection: close\r\nAuthorization: Bearer T0ken'));
    expect(r.status).toBe(200);
    // A wrong Host on an open API says why, in the API's error shape.
    const h = await startHttp(node, { port: 0, host: '127.0.0.1' });
    kit.defer(() => h.close());
    const refused = await rawHttp(h.port, request('GET', '/v1/node', 'evil.example'));
    expect(JSON.parse(refused.body).error).toMatchObject({ code: 'MB_ERR_PERMISSION_DENIED', message: expect.stringMatching(/Host evil\.example is not this machine/) });
  });
});

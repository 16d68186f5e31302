import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { nodeKit, RawWs } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode, type NodeOptions } from '../../src/index.js';
import { WsGateway, type WsGatewayOptions } from '../../src/ws/index.js';
import { isLoopbackOrigin } from '../../src/ws-gateway.js';

/**
 * Cross-site WebSocket hijacking of a node that asks clients for no token
 * (the default of `meshbus start`). The gateway took any Origin unless
 * `--ws-origins` was set, so any web page its visitor opened could connect
 * through the visitor's browser to a node on the machine or the intranet,
 * subscribe to `>` and read every event (a page at https://evil.example got
 * 'payroll.secret' published by another client), or publish. The HTTP API
 * already refuses POSTs with a foreign Origin for this reason. Found by the
 * tenth session's hostile review.
 */

const kit = nodeKit({ start: startNode });

async function gateway(o: NodeOptions, g: WsGatewayOptions = {}): Promise<{ n: MeshNode; gw: WsGateway }> {
  const n = await kit.node({ logger: silentLogger, ...o });
  const gw = await new WsGateway(n, { port: 0, host: '127.0.0.1', ...g }).listen();
  kit.defer(() => gw.close());
  return { n, gw };
}

async function page(gw: WsGateway, origin: string | undefined, hello: Record<string, unknown> = {}): Promise<RawWs> {
  const c = await RawWs.connect(`ws://127.0.0.1:${gw.port}/`, origin === undefined ? { hello } : { origin, hello });
  kit.defer(() => c.ws.terminate());
  return c;
}

describe('WebSocket Origins on a node without client tokens', () => {
  it('a page from another site is refused (403) and reads nothing; pages from this machine and non-browser clients still connect', async () => {
    const { n, gw } = await gateway({});
    const evil = page(gw, 'https://evil.example');
    await expect(evil).rejects.toThrow(/HTTP 403/);
    await expect(page(gw, 'null')).rejects.toThrow(/HTTP 403/);
    await expect(page(gw, 'http://localhost.evil.example')).rejects.toThrow(/HTTP 403/);
    for (const origin of ['http://localhost:3000', 'https://app.localhost', 'http://127.0.0.1:5173', 'http://[::1]:8080', undefined]) {
      const c = await page(gw, origin);
      expect(c.got.some((g) => g.type === FrameType.WELCOME), String(origin)).toBe(true);
    }
    // What the refused page would have read.
    const local = await page(gw, 'http://localhost:3000');
    local.sub('>', 1);
    await local.flush();
    const pub = await kit.raw(n);
    pub.pub('payroll.secret', 'salary');
    await local.waitFor((g) => g.type === FrameType.PUB && g.topic === 'payroll.secret');
  });

  it("'*' or an allow-list still decides: any site with '*', the listed ones with a list", async () => {
    const any = await gateway({}, { origins: ['*'] });
    expect((await page(any.gw, 'https://evil.example')).got.some((g) => g.type === FrameType.WELCOME)).toBe(true);
    const listed = await gateway({}, { origins: ['https://app.example.com'] });
    expect((await page(listed.gw, 'https://app.example.com')).got.some((g) => g.type === FrameType.WELCOME)).toBe(true);
    await expect(page(listed.gw, 'http://localhost:3000')).rejects.toThrow(/HTTP 403/);
  });

  it('a node that requires a token takes any Origin as before: the token decides', async () => {
    const { gw } = await gateway({ token: 'page-needs-this' });
    const without = await page(gw, 'https://evil.example');
    expect(without.got.find((g) => g.type === FrameType.ERROR)?.error).toBe('MB_ERR_AUTH_FAILED');
    const withToken = await page(gw, 'https://app.example.com', { token: 'page-needs-this' });
    expect(withToken.got.some((g) => g.type === FrameType.WELCOME)).toBe(true);
  });

  it("a refused upgrade says why in the HTTP API's error body (was an empty 403): a stable code, what to change, not the origin", async () => {
    const open = await gateway({});
    const listed = await gateway({}, { origins: ['https://app.example.com'], path: '/events' });
    const refused = await upgradeAnswer(open.gw.port, '/', 'https://evil.example');
    expect(refused.status).toBe(403);
    expect(refused.type).toMatch(/^application\/json/);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'MB_ERR_PERMISSION_DENIED', num: 2004, message: expect.stringContaining('--ws-origins') } });
    expect(refused.body).not.toContain('evil.example');
    const notListed = await upgradeAnswer(listed.gw.port, '/events', 'https://evil.example');
    expect(notListed.status).toBe(403);
    expect(JSON.parse(notListed.body).error).toMatchObject({ code: 'MB_ERR_PERMISSION_DENIED', message: "the page's origin is not in this node's --ws-origins" });
    const wrongPath = await upgradeAnswer(listed.gw.port, '/ws', 'https://app.example.com');
    expect(wrongPath.status).toBe(404);
    expect(JSON.parse(wrongPath.body).error).toMatchObject({ code: 'MB_ERR_NOT_FOUND', message: 'no WebSocket endpoint at this path: connect to /events' });
  });

  it('isLoopbackOrigin', () => {
    expect(['http://localhost', 'https://LOCALHOST:1', 'http://a.b.localhost:9', 'http://127.0.0.1', 'http://127.9.8.7:80', 'http://[::1]:3000'].map(isLoopbackOrigin)).toEqual([true, true, true, true, true, true]);
    expect(['null', '', 'file://', 'http://localhost.evil.example', 'http://127.0.0.1.evil.example', 'http://10.0.0.1', 'ws://localhost', 'http://[::2]'].map(isLoopbackOrigin)).toEqual([false, false, false, false, false, false, false, false]);
  });
});


/** The HTTP answer to a WebSocket upgrade the gateway refuses: status, content type, body. */
function upgradeAnswer(port: number, path: string, origin: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path, headers: { connection: 'Upgrade', upgrade: 'websocket', origin, 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' } });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

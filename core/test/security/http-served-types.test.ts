import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { nodeKit } from '@meshbus/testkit';
import { startNode } from '../../src/index.js';
import Fastify from 'fastify';
import { meshbusHttp, startHttpOnDemand } from '../../src/http/index.js';
import { EventTap, nodeWithHttp, rawHttp } from '../http-helpers.js';

/**
 * What the HTTP API's answers say their bodies are (thirteenth session).
 * Before: `POST /v1/request` served the reply's bytes with the responder's
 * own `content-type` (any client allowed to answer a subject made the API
 * serve `text/html` on its origin, the dashboard's), no answer said
 * `nosniff`, and requests Node's HTTP parser refused were answered in
 * fastify's format (`{"error":"Request Header Fields Too
 * Large","statusCode":431}`) or Node's (an empty 400 or 431 from the
 * on-demand listener before it loaded), not the API's.
 */
const kit = nodeKit({ start: startNode });
const BIN = { 'content-type': 'application/octet-stream' };

describe('event bytes are served with a type that cannot run as the API (POST /v1/request)', () => {
  it("a responder's active type (HTML, SVG, XHTML, XML, JavaScript, unknown) is served as application/octet-stream, sandboxed and nosniff; a passive one is kept", async () => {
    const { node, http } = await nodeWithHttp(kit);
    const svc = await kit.raw(node);
    const tap = new EventTap(svc);
    svc.sub('svc.page', 1);
    await svc.flush();
    const served = async (type: string): Promise<[string | null, string | null, string | null]> => {
      const before = tap.events.length;
      const pending = fetch(`${http.url}/v1/request/svc.page?timeout=3000`, { method: 'POST', headers: BIN, body: 'x' });
      const req = await tap.waitFor((e) => e.type === FrameType.REQ && tap.events.indexOf(e) >= before);
      svc.send({ type: FrameType.PUB, topic: req.ext!.reply!, correlation: req.correlation, ext: { headers: { 'Content-Type': type } }, payload: Buffer.from('<script>alert(document.domain)</script>') });
      const r = await pending;
      expect([type, r.status]).toEqual([type, 200]);
      await r.arrayBuffer();
      return [r.headers.get('content-type'), r.headers.get('x-content-type-options'), r.headers.get('content-security-policy')];
    };
    const SANDBOX = "sandbox; default-src 'none'";
    for (const active of ['text/html', 'Text/HTML; charset=utf-8', ' text/html', 'image/svg+xml', 'application/xhtml+xml', 'text/xml', 'application/xml', 'text/javascript', 'application/pdf', 'x/unknown', 'text/html;text/plain']) {
      expect([active, ...(await served(active))]).toEqual([active, 'application/octet-stream', 'nosniff', SANDBOX]);
    }
    for (const [named, kept] of [
      ['application/json', 'application/json'],
      ['Application/JSON; Charset=UTF-8', 'application/json; charset=utf-8'],
      ['text/plain; charset=utf-8; x=<b>', 'text/plain; charset=utf-8'],
      ['image/png', 'image/png'],
      ['application/vnd.api+json', 'application/vnd.api+json'],
    ]) {
      expect([named, ...(await served(named!))]).toEqual([named, kept, 'nosniff', SANDBOX]);
    }
  });

  it('every answer of the API says nosniff: JSON views, traces, errors, refusals', async () => {
    const { http } = await nodeWithHttp(kit);
    for (const [method, path] of [
      ['GET', '/v1/node'],
      ['GET', '/healthz'],
      ['GET', '/no/such/route'],
      ['POST', '/v1/trace/a.b?wait=1'],
      ['POST', '/v1/publish/a..b'],
      ['POST', '/v1/request/a.b?timeout=1'],
    ] as const) {
      const r = await fetch(`${http.url}${path}`, { method, headers: method === 'POST' ? BIN : {}, body: method === 'POST' ? 'x' : undefined });
      await r.arrayBuffer();
      expect([path, r.headers.get('x-content-type-options')]).toEqual([path, 'nosniff']);
    }
    // Refused by the loopback Host rule, in onRequest.
    const refused = await rawHttp(http.port, 'GET /v1/node HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    expect(refused.status).toBe(403);
    expect(refused.head.toLowerCase()).toContain('x-content-type-options: nosniff');
  });
});

describe("requests Node's HTTP parser refuses are answered in the API's error format", () => {
  const HUGE = `GET /v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`;
  const MALFORMED = 'GET /v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header Line\r\n\r\n';
  const check = async (port: number): Promise<void> => {
    for (const [request, status, code] of [
      [HUGE, 431, 'MB_ERR_INVALID_ARGUMENT'],
      [MALFORMED, 400, 'MB_ERR_INVALID_ARGUMENT'],
    ] as const) {
      const a = await rawHttp(port, request);
      expect(a.status).toBe(status);
      expect(a.head.toLowerCase()).toContain('content-type: application/json');
      expect(a.head.toLowerCase()).toContain('x-content-type-options: nosniff');
      const body = JSON.parse(a.body) as { error: { code: string; num: number; message: string } };
      expect(body.error.code).toBe(code);
      expect(typeof body.error.num).toBe('number');
    }
  };

  it('startHttp (fastify answered them in its own format)', async () => {
    const { http } = await nodeWithHttp(kit);
    await check(http.port);
  });

  it('startHttpOnDemand, before and after the API loaded (Node answered an empty 400 or 431)', async () => {
    const node = await kit.node();
    const h = await startHttpOnDemand(node, { port: 0, host: '127.0.0.1' });
    kit.defer(() => h.close());
    await check(h.port);
    expect(h.loaded).toBeUndefined();
    await h.load();
    await check(h.port);
  });
});

describe('a request arriving while the API closes is answered in its format', () => {
  it("503 MB_ERR_DRAINING from the plugin, not fastify's own `{\"error\":\"Service Unavailable\"}` (an app closing with return503OnClosing off, as startHttp's)", async () => {
    const node = await kit.node();
    const app = Fastify({ return503OnClosing: false, forceCloseConnections: true });
    await app.register(meshbusHttp, { node, insecureOpenAdmin: true });
    // After the plugin's (which marks the API closing; a sibling registered later runs later): close work of the
    // app's own, the window a request can arrive in.
    let closingSeen!: () => void;
    const inWindow = new Promise<void>((r) => (closingSeen = r));
    await app.register(async (mine) => {
      mine.addHook('preClose', async () => {
        closingSeen();
        await new Promise((r) => setTimeout(r, 500));
      });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const closed = app.close();
    await inWindow;
    const a = await rawHttp(port, 'GET /v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await closed;
    expect(a.status).toBe(503);
    expect(a.head.toLowerCase()).toContain('x-content-type-options: nosniff');
    expect((JSON.parse(a.body) as { error: { code: string } }).error.code).toBe('MB_ERR_DRAINING');
  });

});

import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { heldWithin, nodeKit, type RawClient } from '@meshbus/testkit';
import { silentLogger, startNode, type MeshNode, type NodeOptions } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { startHttp, type HttpOptions, type HttpServer } from '../../src/http/index.js';
import { EventTap, nodeWithHttp, parseProm, rawHttp, type NodeWithHttp } from '../http-helpers.js';

/**
 * Hostile callers of the HTTP API and the WebSocket port: requests written
 * byte for byte on a socket (nothing normalises them on the way), forged
 * replies, cross-site simple requests, slow handshakes.
 */

const kit = nodeKit({ start: startNode });

const setup = (nodeOpts?: NodeOptions, httpOpts?: HttpOptions): Promise<NodeWithHttp> => nodeWithHttp(kit, nodeOpts, httpOpts);

const client = (n: MeshNode): Promise<RawClient> => kit.raw(n);


/** A request with a body, as raw text. */
function rawRequest(method: string, target: string, o: { headers?: Record<string, string>; body?: string } = {}): string {
  const hasBody = method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
  const body = hasBody ? (o.body ?? '') : '';
  const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
  for (const [k, v] of Object.entries(o.headers ?? {})) lines.push(`${k}: ${v}`);
  if (hasBody) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join('\r\n')}\r\n\r\n${body}`;
}

const BIN = { 'content-type': 'application/octet-stream' };

/** The first close frame in unmasked server-to-client WebSocket frames, or undefined. */
function wsCloseFrame(b: Buffer): { code: number; reason: string } | undefined {
  let at = 0;
  while (at + 2 <= b.length) {
    const opcode = b[at]! & 0x0f;
    let len = b[at + 1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      if (at + 4 > b.length) return undefined;
      len = b.readUInt16BE(at + 2);
      head = 4;
    } else if (len === 127) {
      if (at + 10 > b.length) return undefined;
      len = Number(b.readBigUInt64BE(at + 2));
      head = 10;
    }
    if (at + head + len > b.length) return undefined;
    if (opcode === 0x8) {
      const body = b.subarray(at + head, at + head + len);
      return { code: body.length >= 2 ? body.readUInt16BE(0) : 1005, reason: body.subarray(2).toString() };
    }
    at += head + len;
  }
  return undefined;
}

describe('admin token: decided on the matched route, deny by default (#13.1)', () => {
  it('refuses every spelling of a protected route without the token, and delivers nothing', async () => {
    const { node, http } = await setup({}, { adminToken: 'T0ken' });
    const sub = await client(node);
    const tap = new EventTap(sub);
    sub.sub('>', 1);
    await sub.flush();
    const port = http.port;
    const hostPort = `127.0.0.1:${port}`;
    // The examples first, then the other ways to spell the same path.
    const variants: Array<[string, string]> = [
      ['POST', '/%76%31/publish/x.y'],
      ['GET', `http://${hostPort}/v1/node`],
      ['POST', `http://${hostPort}/v1/publish/x.y`],
      ['GET', '/v%31/node'],
      ['GET', '/%76%31%2Fnode'],
      ['POST', '/v1%2Fpublish%2Fx.y'],
      ['POST', '/v1/%70ublish/x.y'],
      ['GET', '//v1/node'],
      ['GET', '/v1//node'],
      ['GET', '/x/../v1/node'],
      ['GET', '/%2e%2e/v1/node'],
      ['GET', '/./v1/node'],
      ['GET', '/v1/./node'],
      ['GET', '/v1/node/'],
      ['GET', '/V1/node'],
      ['GET', '/v1/node?x=1'],
      ['GET', '/v1/node#frag'],
      ['GET', '/v1/node;a=b'],
      ['POST', '/v1/publish/x.y;a=b'],
      ['POST', '/v1/publish/x.y?z=1'],
      ['HEAD', '/v1/node'],
      ['OPTIONS', '/v1/node'],
      ['OPTIONS', '/v1/publish/x.y'],
      ['DELETE', '/v1/node'],
      ['GET', '/v1/stats/history'],
      ['GET', '/v1/stats%2Fhistory'],
      ['POST', '/v1/request/x.y'],
      ['POST', '/v1/trace/x.y'],
      // Unknown routes: 401 before 404, so what exists does not leak.
      ['GET', '/v1/nope'],
      ['GET', '/v2/node'],
      ['GET', '/nothing'],
      ['POST', '/healthz'],
      ['GET', '/healthz;x'],
    ];
    for (const [method, target] of variants) {
      const r = await rawHttp(port, rawRequest(method, target, { headers: BIN, body: 'hi' }));
      expect([method, target, r.status], r.head).toEqual([method, target, 401]);
      if (method !== 'HEAD') expect(JSON.parse(r.body).error.code, `${method} ${target}`).toBe('MB_ERR_AUTH_FAILED');
    }
    // Nothing was published by any of them.
    await sub.flush();
    expect(tap.events.filter((e) => !e.topic.startsWith('_'))).toEqual([]);
    expect(http.stats.published).toBe(0);

    // With the token the same spellings reach their route (or 404: the token only changes 401).
    const withToken = await rawHttp(port, rawRequest('POST', '/%76%31/publish/x.y', { headers: { ...BIN, authorization: 'Bearer T0ken' }, body: 'hi' }));
    expect(withToken.status).toBe(200);
    expect((await tap.waitFor((e) => e.topic === 'x.y')).payload.toString()).toBe('hi');
    const abs = await rawHttp(port, rawRequest('GET', `http://${hostPort}/v1/node`, { headers: { authorization: 'Bearer T0ken' } }));
    expect([abs.status, JSON.parse(abs.body).id]).toEqual([200, node.id]);
    const unknown = await rawHttp(port, rawRequest('GET', '/v1/nope', { headers: { authorization: 'Bearer T0ken' } }));
    expect([unknown.status, JSON.parse(unknown.body).error.code]).toEqual([404, 'MB_ERR_NOT_FOUND']);
  });

  it('a wrong or malformed token is refused, compared whatever its length', async () => {
    const { http } = await setup({}, { adminToken: 'T0ken' });
    const cases: Array<[string, number]> = [
      ['Bearer T0ke', 403],
      ['Bearer T0kenX', 403],
      ['Bearer t0ken', 403],
      [`Bearer ${'x'.repeat(5000)}`, 403],
      ['Bearer', 401],
      ['Basic VDBrZW4=', 401],
      ['T0ken', 401],
      ['Bearer T0ken extra', 401],
    ];
    for (const [auth, status] of cases) {
      const r = await rawHttp(http.port, rawRequest('GET', '/v1/node', { headers: { authorization: auth } }));
      expect([auth.slice(0, 20), r.status]).toEqual([auth.slice(0, 20), status]);
    }
    const ok = await rawHttp(http.port, rawRequest('GET', '/v1/node', { headers: { authorization: 'bearer   T0ken' } }));
    expect(ok.status).toBe(200);
  });

  it('keeps the probes, /metrics and the dashboard open, however the path is spelt', async () => {
    const { http } = await setup({}, { adminToken: 'T0ken' });
    for (const [method, target] of [
      ['GET', '/healthz'],
      ['HEAD', '/healthz'],
      ['GET', '/readyz'],
      ['GET', '/metrics'],
      ['GET', '/'],
      ['GET', '/dashboard'],
      ['GET', '/%68ealthz'],
      ['GET', `http://127.0.0.1:${http.port}/metrics`],
      ['GET', '/healthz?x=1'],
    ] as const) {
      const r = await rawHttp(http.port, rawRequest(method, target));
      expect([method, target, r.status]).toEqual([method, target, 200]);
    }
  });
});

describe('cross-site requests and content types (#13 low)', () => {
  it('refuses POSTs with a CORS simple content type or none (415), and publishes nothing', async () => {
    const { node, http } = await setup();
    const sub = await client(node);
    const tap = new EventTap(sub);
    sub.sub('x.>', 1);
    await sub.flush();
    const refused: Array<string | undefined> = [
      undefined,
      '',
      'text/plain',
      'text/plain;charset=UTF-8',
      'TEXT/PLAIN; charset=utf-8',
      ' text/plain ',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
    ];
    for (const ct of refused) {
      for (const route of ['/v1/publish/x.a', '/v1/request/x.a', '/v1/trace/x.a?wait=1']) {
        const r = await rawHttp(http.port, rawRequest('POST', route, { headers: ct === undefined ? {} : { 'content-type': ct }, body: 'a=1' }));
        expect([ct, route, r.status]).toEqual([ct, route, 415]);
        expect(JSON.parse(r.body).error).toMatchObject({ code: 'MB_ERR_UNSUPPORTED_MEDIA_TYPE', num: 9010 });
      }
    }
    // A browser form post, as a cross-site page would send it.
    const form = await fetch(`${http.url}/v1/publish/x.form`, { method: 'POST', body: new URLSearchParams({ a: '1' }) });
    expect(form.status).toBe(415);
    await sub.flush();
    expect(tap.events).toEqual([]);
    for (const ct of ['application/octet-stream', 'application/json', 'application/x-custom']) {
      const r = await rawHttp(http.port, rawRequest('POST', '/v1/publish/x.ok', { headers: { 'content-type': ct }, body: 'ok' }));
      expect([ct, r.status]).toEqual([ct, 200]);
    }
    expect(http.stats.published).toBe(3);
  });

  it("refuses a POST whose Origin is not the node's own (403), with or without a token", async () => {
    for (const adminToken of [undefined, 'T0ken']) {
      const { node, http } = await setup({}, { adminToken });
      const sub = await client(node);
      const tap = new EventTap(sub);
      sub.sub('x.>', 1);
      await sub.flush();
      const auth = adminToken ? { authorization: `Bearer ${adminToken}` } : {};
      for (const origin of ['https://evil.example', 'null', `http://127.0.0.1:${http.port + 1}`, `https://127.0.0.1:${http.port}`, `http://127.0.0.1.evil.example`]) {
        const r = await rawHttp(http.port, rawRequest('POST', '/v1/publish/x.o', { headers: { ...BIN, ...auth, origin }, body: 'o' }));
        expect([origin, r.status]).toEqual([origin, 403]);
        expect(JSON.parse(r.body).error.code).toBe('MB_ERR_PERMISSION_DENIED');
      }
      await sub.flush();
      expect(tap.events).toEqual([]);
      // Its own origin (the dashboard's) and no Origin (curl, services) are accepted.
      const own = await rawHttp(http.port, rawRequest('POST', '/v1/publish/x.o', { headers: { ...BIN, ...auth, origin: `http://127.0.0.1` }, body: 'o' }));
      expect(own.status).toBe(200);
      const none = await rawHttp(http.port, rawRequest('POST', '/v1/publish/x.o', { headers: { ...BIN, ...auth }, body: 'o' }));
      expect(none.status).toBe(200);
    }
  });
});

describe('an open admin API only where it is safe (#13 low)', () => {
  it('refuses to start without an admin token on a non-loopback host or on a node that requires client tokens', async () => {
    const node = await startNode({ port: 0, logger: silentLogger });
    kit.defer(() => node.close());
    for (const host of ['0.0.0.0', '::']) {
      await expect(startHttp(node, { port: 0, host })).rejects.toMatchObject({ code: 'MB_ERR_CONFIG', message: expect.stringMatching(/admin token/) });
    }
    const authed = await startNode({ port: 0, logger: silentLogger, token: 'client-secret' });
    kit.defer(() => authed.close());
    await expect(startHttp(authed, { port: 0, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'MB_ERR_CONFIG' });
    const jwt = await startNode({ port: 0, logger: silentLogger, jwt: { hs256Secret: 'k'.repeat(32) } });
    kit.defer(() => jwt.close());
    await expect(startHttp(jwt, { port: 0, host: '127.0.0.1' })).rejects.toMatchObject({ code: 'MB_ERR_CONFIG' });
    // With a token it starts; the explicit opt-out starts it open, with a warning.
    const ok = await startHttp(authed, { port: 0, host: '127.0.0.1', adminToken: 'admin' });
    kit.defer(() => ok.close());
    const warnings: string[] = [];
    const loud = await startNode({ port: 0, logger: { ...silentLogger, warn: (_o: object, m?: string) => void warnings.push(m ?? '') } });
    kit.defer(() => loud.close());
    const open = await startHttp(loud, { port: 0, host: '0.0.0.0', insecureOpenAdmin: true });
    kit.defer(() => open.close());
    expect(warnings.some((w) => /INSECURE/.test(w))).toBe(true);
    expect((await fetch(`http://127.0.0.1:${open.port}/v1/node`)).status).toBe(200);
  });
});

describe('POST /v1/request replies (#13.9)', () => {
  it('uses an unguessable reply topic per request and takes only the reply with the right token and correlation', async () => {
    const { node, http } = await setup();
    const svc = await client(node);
    const svcTap = new EventTap(svc);
    svc.sub('svc.echo', 1);
    await svc.flush();
    const forger = await client(node);
    const hdr = { ...BIN };
    const first = fetch(`${http.url}/v1/request/svc.echo?timeout=5000`, { method: 'POST', headers: hdr, body: 'one' });
    const second = fetch(`${http.url}/v1/request/svc.echo?timeout=5000`, { method: 'POST', headers: hdr, body: 'two' });
    const r1 = await svcTap.waitFor((e) => e.type === FrameType.REQ && e.payload.toString() === 'one');
    const r2 = await svcTap.waitFor((e) => e.type === FrameType.REQ && e.payload.toString() === 'two');
    const prefix = `_INBOX.${node.id}.http.`;
    for (const r of [r1, r2]) expect(r.ext?.reply).toMatch(new RegExp(`^${prefix.replace(/\./g, '\\.')}[0-9a-f]{32}$`));
    expect(r1.ext!.reply).not.toBe(r2.ext!.reply);
    expect(r1.correlation).not.toBe(0);
    // Forged answers: the old predictable topics, a made-up token, the right topic with a wrong correlation.
    for (const n of [0, 1, 2, 3]) forger.send({ type: FrameType.PUB, topic: `${prefix}${n}`, correlation: n, payload: Buffer.from('forged') });
    forger.send({ type: FrameType.PUB, topic: `${prefix}${'0'.repeat(32)}`, correlation: r1.correlation, payload: Buffer.from('forged') });
    forger.send({ type: FrameType.PUB, topic: r1.ext!.reply!, correlation: (r1.correlation + 1) >>> 0, payload: Buffer.from('forged') });
    await forger.flush();
    expect(http.stats.repliesDropped).toEqual({ unknownToken: 5, badCorrelation: 1, malformed: 0 });
    // The real responder answers both.
    for (const r of [r2, r1]) svc.send({ type: FrameType.PUB, topic: r.ext!.reply!, correlation: r.correlation, payload: Buffer.from(`re:${r.payload}`) });
    expect(await (await first).text()).toBe('re:one');
    expect(await (await second).text()).toBe('re:two');
    // A second answer to a settled request is dropped too.
    svc.send({ type: FrameType.PUB, topic: r1.ext!.reply!, correlation: r1.correlation, payload: Buffer.from('again') });
    await svc.flush();
    expect(http.stats.repliesDropped.unknownToken).toBe(6);
    const m = parseProm(await (await fetch(`${http.url}/metrics`)).text());
    expect(m.get('meshbus_http_replies_dropped_total', { reason: 'unknown_token' })).toBe(6);
    expect(m.get('meshbus_http_replies_dropped_total', { reason: 'bad_correlation' })).toBe(1);
    expect(http.stats.requests.ok).toBe(2);
  });
});

describe('one handshake deadline on every listener (#13 low)', () => {
  /**
   * Opens `n` connections that send `request` one byte every `everyMs` and never finish it;
   * resolves with how many the server has closed when `boundMs` ends.
   */
  async function slowloris(port: number, request: string, n: number, everyMs: number, boundMs: number): Promise<number> {
    let closed = 0;
    const sockets: net.Socket[] = [];
    const timers: Array<ReturnType<typeof setInterval>> = [];
    for (let i = 0; i < n; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      // Read what the server says (its 408), so its close is seen here.
      s.resume();
      let at = 0;
      const t = setInterval(() => {
        if (at < request.length - 1 && !s.destroyed) s.write(request[at++]!, 'latin1');
      }, everyMs);
      timers.push(t);
      s.on('close', () => {
        closed++;
        clearInterval(t);
      });
      sockets.push(s);
    }
    kit.defer(() => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
    });
    await heldWithin(() => closed === n, boundMs);
    return closed;
  }

  const SLOW_REQUEST = 'GET /v1/node HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ' + 'a'.repeat(200);
  const SLOW_UPGRADE = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nX-Padding: ' + 'a'.repeat(200);

  it('closes slow request headers on the HTTP API port within handshakeTimeout', async () => {
    const { http } = await setup({ handshakeTimeout: 1000 });
    expect(await slowloris(http.port, SLOW_REQUEST, 30, 250, 8000)).toBe(30);
  });

  it('closes slow upgrade headers on the WebSocket port within handshakeTimeout', async () => {
    const node = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: 1000 });
    kit.defer(() => node.close());
    const g = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
    kit.defer(() => g.close());
    expect(await slowloris(g.port, SLOW_UPGRADE, 30, 250, 8000)).toBe(30);
  });

  it('closes an idle keep-alive HTTP connection and a silent one', async () => {
    const { http } = await setup({ handshakeTimeout: 1000 });
    const idle = net.connect(http.port, '127.0.0.1');
    const silent = net.connect(http.port, '127.0.0.1');
    let closed = 0;
    for (const s of [idle, silent]) {
      s.on('error', () => {});
      s.on('close', () => closed++);
      kit.defer(() => s.destroy());
    }
    let answered = '';
    idle.on('data', (b) => (answered += b.toString()));
    idle.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    silent.resume();
    expect(await heldWithin(() => closed === 2, 8000)).toBe(true);
    expect(answered).toMatch(/^HTTP\/1\.1 200/);
    // The server let go of them, not only the client.
    const open = await new Promise<number>((r) => http.app.server.getConnections((_e, n) => r(n)));
    expect(open).toBe(0);
  });

  it('counts the WebSocket HELLO deadline from the TCP accept, not from the upgrade', async () => {
    const T = 3000;
    const node = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: T });
    kit.defer(() => node.close());
    const g = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
    kit.defer(() => g.close());
    const s = net.connect(g.port, '127.0.0.1');
    s.on('error', () => {});
    kit.defer(() => s.destroy());
    let got = Buffer.alloc(0);
    s.on('data', (b: Buffer) => (got = Buffer.concat([got, b])));
    const upgrade = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    // The headers take two thirds of T (allowed), then the client never says HELLO.
    s.write(upgrade.slice(0, 20));
    await new Promise((r) => setTimeout(r, (2 * T) / 3));
    s.write(upgrade.slice(20));
    expect(await heldWithin(() => got.includes('\r\n\r\n'), 5000)).toBe(true);
    expect(got.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
    // The server's close frame must come before T has passed since the upgrade (it is due at T
    // from the accept, a third of T from now; counted from the upgrade it would come at T).
    const closeFrame = (): { code: number; reason: string } | undefined => wsCloseFrame(got.subarray(got.indexOf('\r\n\r\n') + 4));
    expect(await heldWithin(() => closeFrame() !== undefined, (5 * T) / 6)).toBe(true);
    expect(closeFrame()).toEqual({ code: 1008, reason: 'MB_ERR_HANDSHAKE_TIMEOUT' });
  });

  it('over TLS too: a TLS handshake that never completes is closed on the HTTPS API and the wss port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshbus-sec-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '1', '-subj', '/CN=localhost'], { cwd: dir, stdio: 'ignore' });
    const tls = { cert: readFileSync(join(dir, 'c.pem'), 'utf8'), key: readFileSync(join(dir, 'k.pem'), 'utf8') };
    const { node, http } = await setup({ handshakeTimeout: 1000 }, { tls });
    const g = await new WsGateway(node, { port: 0, host: '127.0.0.1', tls }).listen();
    kit.defer(() => g.close());
    // The first bytes of a TLS record header, then nothing more than a byte a second would give.
    const hello = '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03' + 'r'.repeat(200);
    expect(await slowloris(http.port, hello, 10, 250, 8000)).toBe(10);
    expect(await slowloris(g.port, hello, 10, 250, 8000)).toBe(10);
  });

  it('closes an upgraded WebSocket that never says HELLO', async () => {
    const node = await startNode({ port: 0, logger: silentLogger, handshakeTimeout: 1000 });
    kit.defer(() => node.close());
    const g = await new WsGateway(node, { port: 0, host: '127.0.0.1' }).listen();
    kit.defer(() => g.close());
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${g.port}/`);
    kit.defer(() => ws.terminate());
    const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
    expect(code).toBe(1008);
    expect(await heldWithin(() => node.connectionCount === 0, 5000)).toBe(true);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { FrameType } from '@meshbus/proto';
import { signHs256, silentLogger, startNode, type MeshNode, type NodeOptions } from '../../src/index.js';
import { WsGateway } from '../../src/ws/index.js';
import { startHttp } from '../../src/http/index.js';
import { AuthThrottle, addressKey } from '../../src/auth/auth-throttle.js';
import { RawClient, RawWs, type RawFrames } from '@meshbus/testkit';
import { SECRET, inSeconds, token } from '../jwt-helpers.js';

/**
 * Guessing secrets (issue #13): client tokens over TCP and WebSocket, the
 * HTTP admin token (the cluster secret is in cluster/test/security-peers)
 * all meet one failed-auth limiter per remote address. Past its allowance an
 * address is refused unchecked with MB_ERR_AUTH_THROTTLED, and a correct
 * secret from it works again once the window has passed.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

// One failure comes back every windowMs / maxFailures = 1 s: far longer than an attempt takes even on a loaded CI box, so the sequence below is not refilled under it.
const THROTTLE = { maxFailures: 3, windowMs: 3000 };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function bed(transport: 'tcp' | 'ws', opts: NodeOptions): Promise<{ n: MeshNode; connect(hello: Record<string, unknown>): Promise<RawFrames> }> {
  const n = await startNode({ port: 0, logger: silentLogger, authThrottle: THROTTLE, ...opts });
  cleanups.push(() => n.close());
  let g: WsGateway | undefined;
  if (transport === 'ws') {
    g = await new WsGateway(n, { port: 0, host: '127.0.0.1' }).listen();
    cleanups.push(() => g!.close());
  }
  return {
    n,
    async connect(hello) {
      if (g) {
        const c = await RawWs.connect(`ws://127.0.0.1:${g.port}/`, { hello });
        cleanups.push(() => c.ws.terminate());
        return c;
      }
      const c = await RawClient.connect(n.port, hello);
      cleanups.push(() => c.close());
      return c;
    },
  };
}

/** The outcome of one HELLO: 'welcome' or the ERROR code it got (the connection then closed). */
async function attempt(b: { connect(hello: Record<string, unknown>): Promise<RawFrames> }, hello: Record<string, unknown>): Promise<string> {
  const c = await b.connect(hello);
  const first = c.got.find((g) => g.type === FrameType.WELCOME || g.type === FrameType.ERROR)!;
  if (first.type === FrameType.WELCOME) return 'welcome';
  await c.waitClosed();
  return first.error!;
}

describe.each(['tcp', 'ws'] as const)('client authentication over %s', (transport) => {
  it('static token: N wrong tokens, then refused unchecked with MB_ERR_AUTH_THROTTLED; the right one works after the window', async () => {
    const b = await bed(transport, { token: 'right' });
    const got: string[] = [];
    for (let i = 0; i < THROTTLE.maxFailures + 2; i++) got.push(await attempt(b, { token: `wrong-${i}` }));
    expect(got).toEqual([...Array<string>(THROTTLE.maxFailures).fill('MB_ERR_AUTH_FAILED'), 'MB_ERR_AUTH_THROTTLED', 'MB_ERR_AUTH_THROTTLED']);
    // The right token from the same address is not even looked at while throttled...
    expect(await attempt(b, { token: 'right' })).toBe('MB_ERR_AUTH_THROTTLED');
    await sleep(THROTTLE.windowMs + 100);
    // ...and connects once the window has passed.
    expect(await attempt(b, { token: 'right' })).toBe('welcome');
    expect(b.n.authThrottle.failures.client).toBe(THROTTLE.maxFailures);
    expect(b.n.authThrottle.refused.client).toBe(3);
  });

  it('JWT: forged tokens are charged too (an expired one is not: its signature was valid)', async () => {
    const b = await bed(transport, { jwt: { hs256Secret: SECRET } });
    expect(await attempt(b, { token: token({ sub: 'a', exp: inSeconds(-10) }) })).toBe('MB_ERR_TOKEN_EXPIRED');
    const got: string[] = [];
    for (let i = 0; i < THROTTLE.maxFailures + 1; i++) got.push(await attempt(b, { token: signHs256({ sub: 'a', exp: inSeconds(600) }, `not the secret ${i}`) }));
    expect(got).toEqual([...Array<string>(THROTTLE.maxFailures).fill('MB_ERR_AUTH_FAILED'), 'MB_ERR_AUTH_THROTTLED']);
    expect(await attempt(b, { token: token({ sub: 'a', exp: inSeconds(600) }) })).toBe('MB_ERR_AUTH_THROTTLED');
    await sleep(THROTTLE.windowMs + 100);
    expect(await attempt(b, { token: token({ sub: 'a', exp: inSeconds(600) }) })).toBe('welcome');
  });
});

it('a node without client auth never throttles HELLO', async () => {
  const b = await bed('tcp', {});
  for (let i = 0; i < THROTTLE.maxFailures + 2; i++) expect(await attempt(b, { token: `anything-${i}` })).toBe('welcome');
});

describe('HTTP admin token', () => {
  it('wrong tokens, then 429 MB_ERR_AUTH_THROTTLED (connection closed) even for the right one until the window passes; shared with the client path; in /metrics', async () => {
    const n = await startNode({ port: 0, logger: silentLogger, authThrottle: THROTTLE, token: 'client-secret' });
    cleanups.push(() => n.close());
    const http = await startHttp(n, { port: 0, adminToken: 'admin' });
    cleanups.push(() => http.close());
    const get = (tok: string): Promise<Response> => fetch(`http://127.0.0.1:${http.port}/v1/node`, { headers: { authorization: `Bearer ${tok}` } });
    // One table for every path: a wrong client token counts against the same address.
    expect(await attempt({ connect: (h) => RawClient.connect(n.port, h).then((c) => (cleanups.push(() => c.close()), c)) }, { token: 'bad' })).toBe('MB_ERR_AUTH_FAILED');
    const statuses: number[] = [];
    for (let i = 0; i < THROTTLE.maxFailures; i++) statuses.push((await get(`wrong-${i}`)).status);
    expect(statuses).toEqual([403, 403, 429]);
    const refused = await get('admin');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('connection')).toBe('close');
    expect(((await refused.json()) as { error: { code: string; num: number } }).error).toMatchObject({ code: 'MB_ERR_AUTH_THROTTLED', num: 2050 });
    await sleep(THROTTLE.windowMs + 100);
    expect((await get('admin')).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${http.port}/metrics`)).text();
    expect(metrics).toContain('meshbus_auth_failed_attempts_total{path="client"} 1');
    expect(metrics).toContain('meshbus_auth_failed_attempts_total{path="http"} 2');
    expect(metrics).toContain('meshbus_auth_throttled_total{path="http"} 2');
    expect(metrics).toMatch(/meshbus_auth_throttle_addresses \d+/);
  });
});

describe('AuthThrottle', () => {
  it('remembers at most maxAddresses, however many addresses fail', () => {
    const t = new AuthThrottle({ maxFailures: 2, windowMs: 60_000, maxAddresses: 1000 });
    for (let i = 0; i < 100_000; i++) t.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 'client', 1);
    expect(t.size).toBe(1000);
    // The most recent ones are the ones kept.
    t.failed('10.1.134.159', 'client', 1);
    expect(t.refusal('10.1.134.159', 'client', 1)?.code).toBe('MB_ERR_AUTH_THROTTLED');
    expect(t.refusal('10.0.0.0', 'client', 1)).toBeUndefined();
  });

  it('refills over the window and forgets an address whose allowance is whole again', () => {
    const t = new AuthThrottle({ maxFailures: 4, windowMs: 1000 });
    for (let i = 0; i < 4; i++) t.failed('192.0.2.1', 'peer', 0);
    expect(t.refusal('192.0.2.1', 'peer', 0)?.code).toBe('MB_ERR_AUTH_THROTTLED');
    // One failure back every 250 ms.
    expect(t.refusal('192.0.2.1', 'peer', 249)).toBeDefined();
    expect(t.refusal('192.0.2.1', 'peer', 250)).toBeUndefined();
    expect(t.refusal('192.0.2.1', 'peer', 1000)).toBeUndefined();
    expect(t.size).toBe(0);
  });

  it('keys IPv6 by /64 and IPv4-mapped addresses by their IPv4', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:0db8:0001:0002:ffff:1:2:3'));
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'));
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('127.0.0.1')).toBe('127.0.0.1');
    const t = new AuthThrottle({ maxFailures: 1 });
    t.failed('2001:db8::1', 'client');
    expect(t.refusal('2001:db8::beef', 'client')?.code).toBe('MB_ERR_AUTH_THROTTLED');
  });
});

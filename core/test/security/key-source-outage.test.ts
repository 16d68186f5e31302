import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { signWith as sign, testKey as key, type TestKey as Key } from '../jwt-keys.js';
import { FrameType, decodeError, encodeBody } from '@meshbus/proto';
import { silentLogger, startNode, type JwtKeys, type MeshNode } from '../../src/index.js';
import { RawClient, sleep, until } from '@meshbus/testkit';
import { JWKS_RETRY_AFTER_FAILURE_MS } from '../../src/auth/jwks-fetch.js';
import { inSeconds } from '../jwt-helpers.js';

/**
 * A failure of the node's own key source (JWKS answering 503, a JWKS file
 * that cannot be read, an unknown `kid` while the JWKS may not be fetched
 * again) leaves a token unchecked: MB_ERR_NOT_READY, saying the keys are
 * unavailable, and not a failed authentication of the caller. Before, each
 * was MB_ERR_AUTH_FAILED charged to the address (SDK clients gave up for
 * good), so once the key source was back a valid token from that address
 * got MB_ERR_AUTH_THROTTLED (review F4).
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

const THROTTLE = { maxFailures: 3, windowMs: 60_000 };

async function node(jwt: JwtKeys): Promise<MeshNode> {
  const n = await startNode({ port: 0, logger: silentLogger, jwt, authThrottle: THROTTLE });
  cleanups.push(() => n.close());
  return n;
}

/** A loopback JWKS server: 503 while `up` is false, else `keys`; `requests` counts what it was asked. */
async function jwksServer(): Promise<{ url: string; up: boolean; keys: JWK[]; requests: number }> {
  const s = { url: '', up: false, keys: [] as JWK[], requests: 0 };
  const server: Server = createServer((_req, res) => {
    s.requests++;
    if (!s.up) return res.writeHead(503).end();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: s.keys }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  s.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
  return s;
}

/** The node's answer to one HELLO: 'WELCOME', or the error code and message (then the connection closed). */
async function answer(n: MeshNode, token: string): Promise<string> {
  const c = await RawClient.connect(n.port, { token });
  cleanups.push(() => c.close());
  const first = c.got[0]!;
  if (first.type === FrameType.WELCOME) return 'WELCOME';
  await c.waitClosed();
  return `${first.error}: ${decodeError(first.payload).message}`;
}

const TRIES = THROTTLE.maxFailures + 2;

describe('the key source failing is not the caller failing', () => {
  it('JWKS URL answering 503: NOT_READY, nothing charged, and the same token works once it is back', async () => {
    const srv = await jwksServer();
    const k1 = await key('k1');
    srv.keys = [k1.jwk];
    const n = await node({ jwksUrl: srv.url });
    const tok = await sign(k1, { sub: 'legit', exp: inSeconds(300) });
    const t0 = Date.now();
    for (let i = 0; i < TRIES; i++) {
      const a = await answer(n, tok);
      expect(a).toMatch(/^MB_ERR_NOT_READY: .*signing keys are unavailable.*the JWKS cannot be fetched/);
    }
    expect(n.authThrottle.failures.client).toBe(0);
    // One request a second at most, whatever the tries (after a failed fetch the next waits: jwks-fetch.ts); one a try before.
    expect(srv.requests).toBeLessThanOrEqual(1 + Math.ceil((Date.now() - t0) / JWKS_RETRY_AFTER_FAILURE_MS));
    expect(srv.requests).toBeLessThan(TRIES);
    srv.up = true;
    await until(async () => (await answer(n, tok)) === 'WELCOME', 'the token accepted once the JWKS answers (after the retry wait)', 5000);
  });

  it('JWKS file that cannot be read: NOT_READY, nothing charged, accepted once the file is there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshbus-jwks-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'jwks.json');
    const k1 = await key('k1');
    const n = await node({ jwksFile: file });
    const tok = await sign(k1, { sub: 'legit', exp: inSeconds(300) });
    for (let i = 0; i < TRIES; i++) expect(await answer(n, tok)).toMatch(/^MB_ERR_NOT_READY: .*JWKS file .* cannot be read/);
    writeFileSync(file, '{"keys": [');
    expect(await answer(n, tok)).toMatch(/^MB_ERR_NOT_READY: .*is not a JSON Web Key Set|^MB_ERR_NOT_READY: .*cannot be read/);
    expect(n.authThrottle.failures.client).toBe(0);
    writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
    expect(await answer(n, tok)).toBe('WELCOME');
  });

  it('unknown kid during the refetch cooldown: NOT_READY, not charged; a bad signature still is', async () => {
    const srv = await jwksServer();
    srv.up = true;
    const k1 = await key('k1');
    const k2 = await key('k2');
    srv.keys = [k1.jwk];
    const n = await node({ jwksUrl: srv.url, jwksCooldown: 30 });
    expect(await answer(n, await sign(k1, { sub: 'a', exp: inSeconds(300) }))).toBe('WELCOME');
    // k2 published after the fetch: the node may not fetch again for 30 s.
    srv.keys = [k1.jwk, k2.jwk];
    const rotated = await sign(k2, { sub: 'a', exp: inSeconds(300) });
    for (let i = 0; i < TRIES; i++) expect(await answer(n, rotated)).toMatch(/^MB_ERR_NOT_READY: .*fetched too recently/);
    expect(n.authThrottle.failures.client).toBe(0);
    // A token whose signature the node could check and found wrong is still a failed guess.
    const forged = await sign({ ...k2, kid: 'k1' }, { sub: 'a', exp: inSeconds(300) });
    expect(await answer(n, forged)).toMatch(/^MB_ERR_AUTH_FAILED: /);
    expect(n.authThrottle.failures.client).toBe(1);
    expect(await answer(n, await sign(k1, { sub: 'a', exp: inSeconds(300) }))).toBe('WELCOME');
  });

  it('AUTH during an outage: a non-fatal NOT_READY on its correlation, the connection stays on its old token', async () => {
    const srv = await jwksServer();
    srv.up = true;
    const k1 = await key('k1');
    const k2 = await key('k2');
    srv.keys = [k1.jwk];
    const n = await node({ jwksUrl: srv.url, jwksCooldown: 0, jwksCacheMaxAge: 600 });
    const c = await RawClient.connect(n.port, { token: await sign(k1, { sub: 'a', exp: inSeconds(300) }) });
    cleanups.push(() => c.close());
    expect(c.got[0]!.type).toBe(FrameType.WELCOME);
    srv.up = false;
    c.send({ type: FrameType.AUTH, correlation: 7, payload: encodeBody({ token: await sign(k2, { sub: 'a', exp: inSeconds(600) }) }) });
    const refusal = await c.waitFor((g) => g.correlation === 7 && (g.type === FrameType.ERROR || g.type === FrameType.ACK));
    expect(refusal.error).toBe('MB_ERR_NOT_READY');
    await c.flush();
    expect(c.closed).toBe(false);
    expect(n.authThrottle.failures.client).toBe(0);
    srv.up = true;
    srv.keys = [k1.jwk, k2.jwk];
    await sleep(JWKS_RETRY_AFTER_FAILURE_MS); // the wait after the failed fetch
    c.send({ type: FrameType.AUTH, correlation: 8, payload: encodeBody({ token: await sign(k2, { sub: 'a', exp: inSeconds(600) }) }) });
    expect((await c.waitFor((g) => g.correlation === 8 && (g.type === FrameType.ERROR || g.type === FrameType.ACK))).type).toBe(FrameType.ACK);
  });
});

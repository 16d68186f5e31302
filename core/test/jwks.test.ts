import { KeyObject, constants, sign as cryptoSign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT, exportSPKI, generateKeyPair, type JWK } from 'jose';
import { signWith as sign, testKey as key } from './jwt-keys.js';
import { FrameType, encodeBody } from '@meshbus/proto';
import { MeshNode, mintToken, silentLogger, signHs256, startNode, type JwtKeys } from '../src/index.js';
import { RawClient } from '@meshbus/testkit';
import { SECRET, inSeconds } from './jwt-helpers.js';

/**
 * Client tokens verified through jose against a real node: JWKS served by a
 * loopback HTTP server or read from a file, key rotation, aud/iss checks,
 * the maximum validity (maxTtl), and algorithm confusion refused.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

async function node(jwt: JwtKeys): Promise<MeshNode> {
  const n = await startNode({ port: 0, logger: silentLogger, jwt });
  cleanups.push(() => n.close());
  return n;
}

async function hello(n: MeshNode, token: string | undefined): Promise<RawClient> {
  const c = await RawClient.connect(n.port, token === undefined ? {} : { token });
  cleanups.push(() => c.close());
  return c;
}

/** The first frame the node answered a HELLO with: 'WELCOME' or the error code. */
async function answer(n: MeshNode, token: string | undefined): Promise<string | undefined> {
  const first = (await hello(n, token)).got[0]!;
  return first.type === FrameType.WELCOME ? 'WELCOME' : first.error;
}

/** A loopback HTTP server answering GET /jwks with whatever `keys` holds now; counts fetches. */
async function jwksServer(): Promise<{ url: string; keys: JWK[]; fetches: number; server: Server }> {
  const s = { url: '', keys: [] as JWK[], fetches: 0, server: createServer() };
  s.server.on('request', (req, res) => {
    s.fetches++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: s.keys }));
  });
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => s.server.close(() => r())));
  const addr = s.server.address() as { port: number };
  s.url = `http://127.0.0.1:${addr.port}/jwks`;
  return s;
}

const until = async (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('JWKS URL', () => {
  it('accepts a key added to the JWKS (unknown kid refetches) and refuses one removed once the cache expires', async () => {
    const srv = await jwksServer();
    const k1 = await key('k1');
    const k2 = await key('k2', 'EdDSA');
    srv.keys = [k1.jwk];
    const n = await node({ jwksUrl: srv.url, jwksCooldown: 0, jwksCacheMaxAge: 0.3 });
    expect(await answer(n, await sign(k1, { sub: 'a', exp: inSeconds(60) }))).toBe('WELCOME');
    expect(await answer(n, await sign(k2, { sub: 'b', exp: inSeconds(60) }))).toBe('MB_ERR_AUTH_FAILED');
    srv.keys = [k1.jwk, k2.jwk];
    expect(await answer(n, await sign(k2, { sub: 'b', exp: inSeconds(60) }))).toBe('WELCOME');
    srv.keys = [k2.jwk];
    await until(400); // past jwksCacheMaxAge: the next verification fetches the set again
    expect(await answer(n, await sign(k1, { sub: 'a', exp: inSeconds(60) }))).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, await sign(k2, { sub: 'b', exp: inSeconds(60) }))).toBe('WELCOME');
    expect(n.stats.authFailures).toBe(2);
  });

  it('keeps the JWKS cached between handshakes', async () => {
    const srv = await jwksServer();
    const k1 = await key('k1', 'RS256');
    srv.keys = [k1.jwk];
    const n = await node({ jwksUrl: srv.url });
    for (let i = 0; i < 3; i++) expect(await answer(n, await sign(k1, { sub: `c${i}`, exp: inSeconds(60) }))).toBe('WELCOME');
    expect(srv.fetches).toBe(1);
  });

  it('refuses algorithm confusion: HS256 signed with the public key, alg none, a kid-less HS256 token', async () => {
    const srv = await jwksServer();
    const k1 = await key('k1', 'RS256');
    srv.keys = [k1.jwk];
    const n = await node({ jwksUrl: srv.url });
    const pem = await exportSPKI((await generateKeyPair('RS256', { extractable: true })).publicKey);
    const asHmac = await new SignJWT({ sub: 'eve' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(JSON.stringify(k1.jwk)));
    expect(await answer(n, asHmac)).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, signHs256({ sub: 'eve' }, pem))).toBe('MB_ERR_AUTH_FAILED');
    const body = Buffer.from(JSON.stringify({ sub: 'eve' })).toString('base64url');
    expect(await answer(n, `${Buffer.from('{"alg":"none","kid":"k1"}').toString('base64url')}.${body}.`)).toBe('MB_ERR_AUTH_FAILED');
    // A JWKS key used with another algorithm than its own (RS256 key, PS256 signature).
    const h = Buffer.from(JSON.stringify({ alg: 'PS256', kid: 'k1' })).toString('base64url');
    const pss = cryptoSign('sha256', Buffer.from(`${h}.${body}`), { key: KeyObject.from(k1.privateKey), padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    expect(await answer(n, `${h}.${body}.${pss.toString('base64url')}`)).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, await sign(k1, { sub: 'ok' }))).toBe('WELCOME');
  });

  it('leaves tokens unchecked (MB_ERR_NOT_READY, not a bad token) while the JWKS cannot be fetched, and the node keeps serving', async () => {
    const srv = await jwksServer();
    const url = srv.url;
    await new Promise<void>((r) => srv.server.close(() => r()));
    const k1 = await key('k1');
    const n = await node({ jwksUrl: url, hs256Secret: SECRET });
    expect(await answer(n, await sign(k1, { sub: 'a' }))).toBe('MB_ERR_NOT_READY');
    expect(await answer(n, signHs256({ sub: 'ok' }, SECRET))).toBe('WELCOME');
  });
});

describe('JWKS file', () => {
  it('rotates keys when the file changes: the new kid is accepted, the removed one refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mb-jwks-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'jwks.json');
    const k1 = await key('k1', 'EdDSA');
    const k2 = await key('k2');
    writeFileSync(file, JSON.stringify({ keys: [k1.jwk] }));
    const n = await node({ jwksFile: file });
    expect(await answer(n, await sign(k1, { sub: 'a' }))).toBe('WELCOME');
    expect(await answer(n, await sign(k2, { sub: 'b' }))).toBe('MB_ERR_AUTH_FAILED');
    writeFileSync(file, JSON.stringify({ keys: [k2.jwk] }));
    expect(await answer(n, await sign(k2, { sub: 'b' }))).toBe('WELCOME');
    expect(await answer(n, await sign(k1, { sub: 'a' }))).toBe('MB_ERR_AUTH_FAILED');
    // The node's file broken: its tokens are left unchecked, not refused as bad (key-source-outage.test.ts).
    writeFileSync(file, 'not json');
    expect(await answer(n, await sign(k2, { sub: 'b' }))).toBe('MB_ERR_NOT_READY');
  });
});

describe('claims', () => {
  it('refuses a token whose aud or iss the node does not accept', async () => {
    const n = await node({ hs256Secret: SECRET, audience: 'meshbus', issuer: ['https://id.example', 'dev'] });
    const t = (c: Record<string, unknown>): string => signHs256({ sub: 'a', exp: inSeconds(60), ...c }, SECRET);
    expect(await answer(n, t({ aud: 'meshbus', iss: 'dev' }))).toBe('WELCOME');
    expect(await answer(n, t({ aud: ['other', 'meshbus'], iss: 'https://id.example' }))).toBe('WELCOME');
    expect(await answer(n, t({ aud: 'other', iss: 'dev' }))).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, t({ aud: 'meshbus', iss: 'evil' }))).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, t({ iss: 'dev' }))).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, t({ aud: 'meshbus' }))).toBe('MB_ERR_AUTH_FAILED');
  });

  it('maxTtl refuses tokens valid for longer (exp - iat or exp - now) and tokens without exp', async () => {
    const n = await node({ hs256Secret: SECRET, maxTtl: 600 });
    const t = (c: Record<string, unknown>): string => signHs256({ sub: 'a', ...c }, SECRET);
    expect(await answer(n, t({ iat: inSeconds(0), exp: inSeconds(300) }))).toBe('WELCOME');
    expect(await answer(n, t({ exp: inSeconds(3600) }))).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, t({ iat: inSeconds(-3000), exp: inSeconds(60) }))).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, t({}))).toBe('MB_ERR_AUTH_FAILED');
    expect(await answer(n, t({ exp: inSeconds(-1) }))).toBe('MB_ERR_TOKEN_EXPIRED');
  });

  it('mintToken signs with a secret or a private key, and the node enforces what it minted', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
    const { exportPKCS8 } = await import('jose');
    const n = await node({ hs256Secret: SECRET, ed25519PublicKey: await exportSPKI(publicKey), maxTtl: 3600 });
    const viaKey = await mintToken({ sub: 'k', privateKey: await exportPKCS8(privateKey), ttl: 600 });
    expect(await answer(n, viaKey)).toBe('WELCOME');
    const c = await hello(n, await mintToken({ sub: 's', secret: SECRET, ttl: 600, publish: { allow: ['a.>'] } }));
    c.pub('a.x', 'ok', 1);
    c.pub('b.x', 'no', 2);
    await c.flush();
    expect(c.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.error, g.correlation])).toEqual([['MB_ERR_PERMISSION_DENIED', 2]]);
    expect(await answer(n, await mintToken({ sub: 'long', secret: SECRET, ttl: 7200 }))).toBe('MB_ERR_AUTH_FAILED');
  });
});

describe('frames sent before the token is verified', () => {
  it('are handled after it, under it: a SUB pipelined with HELLO, a PUB pipelined with AUTH', async () => {
    const srv = await jwksServer();
    const k1 = await key('k1');
    srv.keys = [k1.jwk];
    const n = await node({ jwksUrl: srv.url });
    const c = await RawClient.connect(n.port, false);
    cleanups.push(() => c.close());
    const wide = await sign(k1, { sub: 'p', exp: inSeconds(60) });
    c.send(
      { type: FrameType.HELLO, payload: encodeBody({ v: [1, 1], token: wide }) },
      { type: FrameType.SUB, topic: 'x.>', correlation: 1, payload: encodeBody({}) },
      { type: FrameType.PUB, topic: 'x.1', payload: Buffer.from('one') },
    );
    await c.waitFor((g) => g.topic === 'x.1');
    expect(c.got[0]!.type).toBe(FrameType.WELCOME);
    const narrow = await sign(k1, { sub: 'p', exp: inSeconds(60), permissions: { publish: { allow: ['y.>'] } } });
    c.send({ type: FrameType.AUTH, correlation: 7, payload: encodeBody({ token: narrow }) }, { type: FrameType.PUB, topic: 'x.2', correlation: 8, payload: Buffer.from('two') });
    await c.waitFor((g) => g.type === FrameType.ERROR && g.correlation === 8);
    await c.flush();
    expect(c.got.filter((g) => g.type === FrameType.ACK).map((g) => g.correlation)).toEqual([7]);
    expect(c.got.filter((g) => g.type === FrameType.ERROR).map((g) => g.error)).toEqual(['MB_ERR_PERMISSION_DENIED']);
    expect(c.events().map((g) => g.topic)).toEqual(['x.1']);
  });
});

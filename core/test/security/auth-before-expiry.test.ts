import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { signWith as sign, testKey as key, type TestKey as Key } from '../jwt-keys.js';
import { FrameType, encodeBody } from '@meshbus/proto';
import { silentLogger, startNode, type MeshNode } from '../../src/index.js';
import { KEY_LOOKUP_TIMEOUT_MS } from '../../src/auth/keys-unavailable.js';
import { RawClient } from '@meshbus/testkit';

/**
 * SPEC 10.1: a connection survives its token's expiry if the client sent a
 * fresh token (AUTH) before it. Before, the old token's timer closed the
 * connection MB_ERR_TOKEN_EXPIRED while the fresh one was still being
 * verified (a JWKS fetch for a rotated key), and the AUTH's ACK never came
 * (review F5). Now the expiry waits for the verdict, at most
 * KEY_LOOKUP_TIMEOUT_MS after the AUTH: accepted, the new expiry holds;
 * refused, the refusal closes the connection, or the old expiry does when
 * the refusal is not fatal.
 */

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});

/** A JWKS server that answers `delayMs` late (Infinity: never). */
async function slowJwks(): Promise<{ url: string; keys: JWK[]; delayMs: number }> {
  const s = { url: '', keys: [] as JWK[], delayMs: 0 };
  const server: Server = createServer((_req, res) => {
    const go = (): void => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: s.keys }));
    };
    if (s.delayMs === 0) go();
    else if (Number.isFinite(s.delayMs)) setTimeout(go, s.delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  s.url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
  return s;
}

/**
 * A connection whose token (k1) ends at the next whole second at least 1 s
 * away, and k2 published but not yet fetched: an AUTH signed with k2 needs
 * a fetch, which the server answers `late` ms after the old token ended.
 */
async function bed(late: number): Promise<{ n: MeshNode; c: RawClient; k1: Key; k2: Key; exp: number; srv: { delayMs: number } }> {
  const srv = await slowJwks();
  const k1 = await key('k1');
  const k2 = await key('k2');
  srv.keys = [k1.jwk];
  const n = await startNode({ port: 0, logger: silentLogger, jwt: { jwksUrl: srv.url, jwksCooldown: 0 } });
  cleanups.push(() => n.close());
  const exp = Math.ceil(Date.now() / 1000) + 1;
  const c = await RawClient.connect(n.port, { token: await sign(k1, { sub: 'alice', exp }) });
  cleanups.push(() => c.close());
  expect(c.got[0]!.type).toBe(FrameType.WELCOME);
  srv.keys = [k1.jwk, k2.jwk];
  srv.delayMs = exp * 1000 - Date.now() + late;
  return { n, c, k1, k2, exp, srv };
}

const auth = (c: RawClient, token: string, correlation: number): void => c.send({ type: FrameType.AUTH, correlation, payload: encodeBody({ token }) });
const verdict = (c: RawClient, correlation: number, ms = 8000) => c.waitFor((g) => g.correlation === correlation && (g.type === FrameType.ACK || g.type === FrameType.ERROR), ms);
const closedWith = (c: RawClient): string | undefined => c.got.filter((g) => g.type === FrameType.ERROR && g.correlation === 0).at(-1)?.error;

describe('AUTH sent before expiry, verified after it', () => {
  it('accepted: ACK, and the connection lives on under the new token', async () => {
    const { c, k2, exp } = await bed(700);
    auth(c, await sign(k2, { sub: 'alice', exp: exp + 60 }), 7);
    expect((await verdict(c, 7)).type).toBe(FrameType.ACK);
    expect(Date.now()).toBeGreaterThan(exp * 1000);
    await c.flush();
    expect(c.closed).toBe(false);
    expect(c.got.filter((g) => g.error)).toEqual([]);
  });

  it('refused (bad signature): closed as the refusal says, MB_ERR_AUTH_FAILED', async () => {
    const { c, k2, exp } = await bed(500);
    auth(c, await sign({ ...k2, kid: 'k2', privateKey: (await key('x')).privateKey }, { sub: 'alice', exp: exp + 60 }), 7);
    await c.waitClosed(8000);
    expect(closedWith(c)).toBe('MB_ERR_AUTH_FAILED');
  });

  it('another subject (not fatal): MB_ERR_SUBJECT_CHANGED, then closed as expired, the old token having ended', async () => {
    const { c, k2, exp } = await bed(500);
    auth(c, await sign(k2, { sub: 'mallory', exp: exp + 60 }), 7);
    expect((await verdict(c, 7)).error).toBe('MB_ERR_SUBJECT_CHANGED');
    await c.waitClosed();
    expect(closedWith(c)).toBe('MB_ERR_TOKEN_EXPIRED');
  });

  it('a key source that never answers holds an expired connection at most KEY_LOOKUP_TIMEOUT_MS after the AUTH', async () => {
    const { c, k2, exp, srv } = await bed(0);
    srv.delayMs = Infinity;
    const sent = Date.now();
    auth(c, await sign(k2, { sub: 'alice', exp: exp + 60 }), 7);
    await c.waitClosed(KEY_LOOKUP_TIMEOUT_MS + 3000);
    // Held past the old expiry (a second or two after the AUTH), then not a moment past the bound.
    expect(Date.now() - sent).toBeGreaterThan(KEY_LOOKUP_TIMEOUT_MS - 300);
    expect(Date.now() - sent).toBeLessThan(KEY_LOOKUP_TIMEOUT_MS + 1500);
    expect(Date.now()).toBeGreaterThan(exp * 1000);
    expect(closedWith(c)).toBe('MB_ERR_TOKEN_EXPIRED');
  });
});

import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { JWK } from 'jose';
import { FrameType, encodeBody } from '@meshbus/proto';
import { RawClient, sleep } from '@meshbus/testkit';
import { signHs256, silentLogger, startNode, type MeshNode } from '../src/index.js';
import { signWith as sign, testKey as key } from './jwt-keys.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f();
});
const SECRET = 'linger-secret-linger-secret-linger-secret';

/**
 * A draining node keeps reading a client after its GOODBYE until the client
 * closes or the drain deadline (SPEC 10.7). The session left routing then,
 * but its token and the frames held for a token check stayed with it only
 * from this change on: before, the GOODBYE ran the session's whole close, so
 * frames held behind an AUTH being checked were dropped while later ones were
 * routed (a gap and a reordering), and the token's expiry timer was stopped
 * (a client publishing past its exp until the deadline). A review of the
 * session's own changes (twentieth session).
 */

describe('a draining node reading after its GOODBYE (SPEC 10.7) keeps the rest of the session', () => {
  it('a token that expires while the node reads after its GOODBYE ends the connection at its exp (it published until the drain deadline)', async () => {
    const n: MeshNode = await startNode({ port: 0, logger: silentLogger, drainTimeout: 6000, jwt: { hs256Secret: SECRET } });
    cleanups.push(() => n.close());
    const got: Array<{ topic: string; at: number }> = [];
    n.subscribeInternal('lg.>', (f) => got.push({ topic: f.topic, at: Date.now() }), { label: 'review' });
    const exp = Math.ceil(Date.now() / 1000) + 2;
    const c = await RawClient.connect(n.port, { token: signHs256({ sub: 'mallory', exp }, SECRET) });
    cleanups.push(() => c.close());
    expect(c.got[0]!.type).toBe(FrameType.WELCOME);
    (c.socket as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true; // hostile: keeps its side open after the node's FIN
    let fin = false;
    c.socket.on('end', () => (fin = true));
    const stopping = n.shutdown();
    await c.waitFor((g) => g.type === FrameType.GOODBYE);
    // Hostile: never closes its side, publishes once every 200 ms, past its token's exp.
    let i = 0;
    while (Date.now() < exp * 1000 + 2500 && !c.socket.destroyed) {
      c.pub('lg.t', String(i++));
      await sleep(200);
    }
    const after = got.filter((g) => g.at > exp * 1000 + 50);
    await stopping;
    // What SPEC 10.1 says: at exp the node closes a live session. It should have been cut at exp.
    expect(after.length).toBe(0);
  }, 20000);

  it('events held behind an AUTH being checked are routed in order after the GOODBYE (they were dropped, the later ones routed)', async () => {
    // A JWKS that answers the second fetch (the AUTH's new kid) 1.5 s late.
    const s = { keys: [] as JWK[], delayMs: 0 };
    const server: Server = createServer((_q, res) => {
      const go = () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ keys: s.keys }));
      };
      if (s.delayMs === 0) go();
      else setTimeout(go, s.delayMs);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;
    const k1 = await key('k1');
    const k2 = await key('k2');
    s.keys = [k1.jwk];
    const n = await startNode({ port: 0, logger: silentLogger, drainTimeout: 6000, jwt: { jwksUrl: url, jwksCooldown: 0 } });
    cleanups.push(() => n.close());
    const got: string[] = [];
    const t0 = Date.now();
    n.subscribeInternal('lg.>', (f) => got.push(Buffer.from(f.payload).toString() + '@' + (Date.now() - t0)), { label: 'review' });
    const c = await RawClient.connect(n.port, { token: await sign(k1, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }) });
    cleanups.push(() => c.close());
    expect(c.got[0]!.type).toBe(FrameType.WELCOME);
    s.keys = [k1.jwk, k2.jwk];
    s.delayMs = 1500;
    for (let i = 0; i < 5; i++) c.pub('lg.t', `before-auth-${i}`);
    c.send({ type: FrameType.AUTH, correlation: 7, payload: encodeBody({ token: await sign(k2, { sub: 'alice', exp: Math.floor(Date.now() / 1000) + 120 }) }) });
    for (let i = 0; i < 5; i++) c.pub('lg.t', `held-${i}`);
    await sleep(300); // the held PUBs are read and held (AUTH in verification)
    const stopping = n.shutdown();
    await c.waitFor((g) => g.type === FrameType.GOODBYE);
    // The client had sent these before it read the GOODBYE: SPEC 10.7 says they are routed.
    for (let i = 0; i < 5; i++) c.pub('lg.t', `after-goodbye-${i}`);
    await sleep(2000);
    c.close();
    await stopping;
    const order = got.map((g) => g.slice(0, g.indexOf('@')));
    expect(order).toEqual([...[0, 1, 2, 3, 4].map((i) => `before-auth-${i}`), ...[0, 1, 2, 3, 4].map((i) => `held-${i}`), ...[0, 1, 2, 3, 4].map((i) => `after-goodbye-${i}`)]);
  }, 20000);
});

import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FrameType, encodeBody } from '@meshbus/proto';
import { nodeKit, type RawClient } from '@meshbus/testkit';
import { covers, signHs256, startNode, JwtVerifier, type MeshNode, type NodeOptions } from '../src/index.js';
import { SECRET, inSeconds } from './jwt-helpers.js';

const kit = nodeKit({ start: startNode, defaults: { jwt: { hs256Secret: SECRET } } });
const node = (opts?: NodeOptions): Promise<MeshNode> => kit.node(opts);
const client = (n: MeshNode, token?: string): Promise<RawClient> => kit.raw(n, token === undefined ? {} : { token });

describe('pattern cover', () => {
  it('decides when one pattern contains another', () => {
    expect(covers('orders.>', 'orders.eu.*')).toBe(true);
    expect(covers('orders.*', 'orders.eu')).toBe(true);
    expect(covers('orders.*', 'orders.>')).toBe(false);
    expect(covers('orders.*', 'orders.eu.x')).toBe(false);
    expect(covers('>', 'a')).toBe(true);
    expect(covers('a.b', 'a.*')).toBe(false);
    expect(covers('*.b', 'x.b')).toBe(true);
  });
});

describe('JWT auth', () => {
  it('accepts HS256 and EdDSA tokens and refuses bad, unsigned and expired ones', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const n = await node({ jwt: { hs256Secret: SECRET, ed25519PublicKey: pem } });
    const ok = await client(n, signHs256({ sub: 'alice', exp: inSeconds(60) }, SECRET));
    expect(ok.got[0]!.type).toBe(FrameType.WELCOME);
    expect([...n.connections()].some((s) => s.subject === 'alice')).toBe(true);

    const h = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT' })).toString('base64url');
    const p = Buffer.from(JSON.stringify({ sub: 'bob' })).toString('base64url');
    const ed = `${h}.${p}.${sign(null, Buffer.from(`${h}.${p}`), privateKey).toString('base64url')}`;
    expect((await client(n, ed)).got[0]!.type).toBe(FrameType.WELCOME);

    const wrongKey = await client(n, signHs256({ sub: 'eve' }, 'another-secret'));
    expect(wrongKey.got[0]!.error).toBe('MB_ERR_AUTH_FAILED');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${p}.`;
    expect((await client(n, none)).got[0]!.error).toBe('MB_ERR_AUTH_FAILED');
    expect((await client(n)).got[0]!.error).toBe('MB_ERR_AUTH_FAILED');
    const old = await client(n, signHs256({ sub: 'carol', exp: inSeconds(-60) }, SECRET));
    expect(old.got[0]!.error).toBe('MB_ERR_TOKEN_EXPIRED');
    await old.waitClosed();
    expect(n.stats.authFailures).toBe(4);
  });

  it('checks publish and subscribe permissions on every PUB and SUB, deny wins', async () => {
    const n = await node();
    const token = signHs256(
      {
        sub: 'svc',
        permissions: {
          publish: { allow: ['orders.>'], deny: ['orders.secret.>'] },
          subscribe: { allow: ['orders.>', 'audit.*'], deny: ['orders.internal'] },
        },
      },
      SECRET,
    );
    const c = await client(n, token);
    const watcher = await client(n, signHs256({ sub: 'ops' }, SECRET));
    watcher.sub('>', 1);
    await watcher.flush();
    c.sub('orders.>', 1); // overlaps the denied topic: accepted, filtered at delivery
    c.sub('payments.>', 2); // not allowed
    c.sub('orders.internal', 3); // inside a deny
    c.pub('orders.eu', 'ok', 10);
    c.pub('orders.secret.key', 'no', 11);
    c.pub('payments.x', 'no', 12);
    await c.flush();
    watcher.pub('orders.internal', 'hidden');
    watcher.pub('orders.us', 'visible');
    await watcher.flush();
    await c.waitFor((g) => g.topic === 'orders.us');
    const errors = c.got.filter((g) => g.type === FrameType.ERROR).map((g) => [g.error, g.correlation]);
    expect(errors).toEqual([
      ['MB_ERR_PERMISSION_DENIED', 2],
      ['MB_ERR_PERMISSION_DENIED', 3],
      ['MB_ERR_PERMISSION_DENIED', 11],
      ['MB_ERR_PERMISSION_DENIED', 12],
    ]);
    expect(c.events().map((g) => g.topic)).toEqual(['orders.eu', 'orders.us']);
    expect(watcher.events().map((g) => g.topic)).toEqual(['orders.eu', 'orders.internal', 'orders.us']);
    expect(n.stats.permissionDenied).toBe(4);
    expect(c.closed).toBe(false);
  });

  it('closes a live connection when its token expires, unless refreshed with AUTH', async () => {
    const n = await node();
    // 1 to 2 s left: never so little that the refresh below could arrive after it (exp is in whole seconds).
    const short = () => signHs256({ sub: 'temp', exp: inSeconds(2) }, SECRET);
    const refreshed = await client(n, short());
    const lapsed = await client(n, short());
    refreshed.send({ type: FrameType.AUTH, correlation: 9, payload: encodeBody({ token: signHs256({ sub: 'temp', exp: inSeconds(3600) }, SECRET) }) });
    await refreshed.waitFor((g) => g.type === FrameType.ACK && g.correlation === 9);
    const e = await lapsed.waitFor((g) => g.type === FrameType.ERROR, 4000);
    expect(e.error).toBe('MB_ERR_TOKEN_EXPIRED');
    await lapsed.waitClosed();
    await refreshed.flush();
    expect(refreshed.closed).toBe(false);
    expect(n.stats.tokensExpired).toBe(1);
  });

  it('verifier refuses tokens without a subject or with malformed permissions', async () => {
    const v = new JwtVerifier({ hs256Secret: SECRET });
    await expect(v.verify(signHs256({ exp: inSeconds(10) }, SECRET))).rejects.toThrow(/subject/);
    await expect(v.verify(signHs256({ sub: 'x', permissions: { publish: { allow: 'a.b' } } }, SECRET))).rejects.toThrow(/list/);
    await expect(v.verify('garbage')).rejects.toThrow(/not a JWT/);
  });
});

describe('limits', () => {
  it('refuses connections over the per-IP limit with a typed error', async () => {
    const n = await node({ jwt: undefined, maxConnectionsPerIp: 2 });
    const first = await client(n);
    await client(n);
    const third = await client(n);
    expect(third.got[0]!.error).toBe('MB_ERR_TOO_MANY_CONNECTIONS');
    await third.waitClosed();
    expect(n.stats.connectionsRefused).toBe(1);
    // A freed slot can be used again.
    first.close();
    await new Promise((r) => setTimeout(r, 50));
    expect((await client(n)).got[0]!.type).toBe(FrameType.WELCOME);
  });

  it('rate-limits publishes per connection and reports it', async () => {
    const n = await node({ jwt: undefined, publishRate: 50, publishBurst: 10 });
    const sub = await client(n);
    sub.sub('r', 1);
    await sub.flush();
    const pub = await client(n);
    for (let i = 0; i < 100; i++) pub.pub('r', String(i));
    await pub.flush();
    const e = await pub.waitFor((g) => g.type === FrameType.ERROR);
    expect(e.error).toBe('MB_ERR_RATE_LIMITED');
    await sub.flush();
    expect(sub.events().length).toBeGreaterThanOrEqual(10);
    expect(sub.events().length).toBeLessThan(100);
    expect(n.stats.rateLimited).toBe(100 - sub.events().length);
    expect(pub.closed).toBe(false);
  });
});

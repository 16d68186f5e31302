import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair } from 'jose';
import { freePort } from '@meshbus/core';
import { connect, type Client, type Status } from '@meshbus/sdk';
import { loadStartConfig } from '../src/config.js';
import { runCli, spawnCli, until, type CliProcess } from '@meshbus/testkit';

/**
 * Issue #16, tokens: `meshbus token` mints a JWT with jose, and a node started
 * with --jwt-secret / --jwks-file / --jwt-audience / --jwt-max-ttl accepts it
 * and enforces its permissions. Real processes, real sockets.
 */

const SECRET = 'cli-token-test-secret-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'mb-token-'));
const procs: CliProcess[] = [];
const clients: Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
});
afterAll(async () => {
  for (const p of procs) {
    p.child.kill('SIGTERM');
    await p.exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startNode(args: string[]): Promise<string> {
  const port = await freePort();
  const p = spawnCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info', ...args]);
  procs.push(p);
  await until(() => p.err().includes('node listening') || p.child.exitCode !== null, 'the node to listen');
  expect(p.child.exitCode, p.err()).toBeNull();
  return `127.0.0.1:${port}`;
}

async function mint(args: string[]): Promise<string> {
  const r = await runCli(['token', ...args]);
  expect(r.code, r.err).toBe(0);
  return r.out.trim();
}

/** Connects with `token`; the errors the node reports come back in `errors`. */
async function client(server: string, token: string): Promise<{ c: Client; errors: string[] }> {
  const c = await connect(server, { token, reconnect: false });
  clients.push(c);
  const errors: string[] = [];
  c.on('status', (s: Status) => {
    if (s.type === 'error') errors.push(s.error.code);
  });
  return { c, errors };
}

describe('meshbus token', () => {
  it('prints a JWT with the subject, permissions and lifetime asked for', async () => {
    const t = await mint(['--secret', SECRET, '--sub', 'alice', '--pub', 'a.>', '--sub-allow', 'b.*', '--sub-deny', 'b.secret', '--ttl', '1h', '--aud', 'mesh', '--iss', 'dev']);
    expect(t.split('.')).toHaveLength(3);
    const claims = decodeJwt(t);
    expect(claims).toMatchObject({ sub: 'alice', aud: 'mesh', iss: 'dev', permissions: { publish: { allow: ['a.>'] }, subscribe: { allow: ['b.*'], deny: ['b.secret'] } } });
    expect(claims.exp! - claims.iat!).toBe(3600);
    expect(decodeProtectedHeader(t).alg).toBe('HS256');
    expect(decodeJwt(await mint(['--secret', SECRET, '--sub', 'x', '--ttl', '0'])).exp).toBeUndefined();
    const d = decodeJwt(await mint(['--secret', SECRET, '--sub', 'x', '--ttl', '90000ms']));
    expect(d.exp! - d.iat!).toBe(90);
  });

  it.each([
    { args: ['--secret', SECRET], says: '--sub' },
    { args: ['--sub', 'a'], says: 'exactly one of --secret' },
    { args: ['--sub', 'a', '--secret', SECRET, '--private-key', 'k.pem'], says: 'exactly one of --secret' },
    { args: ['--sub', 'a', '--secret', SECRET, '--ttl', 'soon'], says: '--ttl' },
    { args: ['--sub', 'a', '--secret', SECRET, '--ttl', '1500ms'], says: '--ttl must be a whole number of seconds' },
    { args: ['--sub', 'a', '--secret', SECRET, 'extra'], says: 'unexpected argument' },
    { args: ['--sub', 'a', '--secret', SECRET, '--pub', 'a..b'], says: '--pub "a..b"' },
    { args: ['--sub', 'a', '--secret', SECRET, '--sub-allow', 'a.>.b'], says: '--sub-allow' },
  ])('exits 2 on bad usage: $args', async ({ args, says }) => {
    const r = await runCli(['token', ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toContain(says);
    expect(r.out).toBe('');
  });

  it('exits 1 when the private key file cannot be read', async () => {
    const r = await runCli(['token', '--sub', 'a', '--private-key', join(dir, 'missing.pem')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('missing.pem');
  });
});

describe('a minted token against a real node', () => {
  let server: string;
  beforeAll(async () => {
    server = await startNode(['--jwt-secret', SECRET, '--jwt-max-ttl', '7200']);
  });

  it('connects, and its publish and subscribe permissions are enforced', async () => {
    const alice = await client(server, await mint(['--secret', SECRET, '--sub', 'alice', '--pub', 'a.>', '--sub-allow', 'b.*', '--ttl', '1h']));
    const ops = await client(server, await mint(['--secret', SECRET, '--sub', 'ops', '--ttl', '10m']));
    const seenByOps: string[] = [];
    ops.c.subscribe('>', { callback: (m) => void seenByOps.push(m.topic) });
    await ops.c.flush();
    const gotByAlice: string[] = [];
    alice.c.subscribe('b.*', { callback: (m) => void gotByAlice.push(m.topic) });
    alice.c.subscribe('c.*', { callback: (m) => void gotByAlice.push(m.topic) });
    alice.c.publish('a.x', 'ok');
    alice.c.publish('c.x', 'refused');
    await alice.c.flush();
    ops.c.publish('b.1', 'to alice');
    ops.c.publish('c.1', 'not to alice');
    await ops.c.flush();
    await until(() => gotByAlice.length > 0 && seenByOps.includes('c.1'), 'deliveries');
    await alice.c.flush();
    expect(gotByAlice).toEqual(['b.1']);
    expect(seenByOps.filter((t) => t.startsWith('a.') || t.startsWith('c.x'))).toEqual(['a.x']);
    expect(alice.errors).toEqual(['MB_ERR_PERMISSION_DENIED', 'MB_ERR_PERMISSION_DENIED']);
  });

  it('the CLI client commands take the minted token; a token over --jwt-max-ttl or with another secret is refused', async () => {
    const ok = await runCli(['pub', 'a.x', 'hi', '--server', server, '--token', await mint(['--secret', SECRET, '--sub', 'cli', '--ttl', '2h'])]);
    expect(ok.code, ok.err).toBe(0);
    const long = await runCli(['pub', 'a.x', 'hi', '--server', server, '--token', await mint(['--secret', SECRET, '--sub', 'cli', '--ttl', '3h'])]);
    expect(long.code).toBe(1);
    expect(long.err).toContain('MB_ERR_AUTH_FAILED');
    const forged = await runCli(['pub', 'a.x', 'hi', '--server', server, '--token', await mint(['--secret', 'another-secret-entirely', '--sub', 'cli'])]);
    expect(forged.code).toBe(1);
    expect(forged.err).toContain('MB_ERR_AUTH_FAILED');
  });
});

describe('a node verifying with a JWKS file, audience and issuer', () => {
  it('accepts a token minted with the private key of a JWKS entry (--kid) and the right aud/iss, and refuses the others', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
    const keyFile = join(dir, 'ed.pem');
    writeFileSync(keyFile, await exportPKCS8(privateKey));
    const jwksFile = join(dir, 'jwks.json');
    writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'dev-1', alg: 'EdDSA' }] }));
    const s = await startNode(['--jwks-file', jwksFile, '--jwt-audience', 'meshbus', '--jwt-issuer', 'dev']);
    const good = await mint(['--private-key', keyFile, '--kid', 'dev-1', '--sub', 'svc', '--aud', 'meshbus', '--iss', 'dev', '--pub', 'svc.>']);
    expect(decodeProtectedHeader(good)).toMatchObject({ alg: 'EdDSA', kid: 'dev-1' });
    expect((await runCli(['pub', 'svc.x', 'hi', '--server', s, '--token', good])).code).toBe(0);
    for (const bad of [
      ['--private-key', keyFile, '--kid', 'dev-1', '--sub', 'svc', '--iss', 'dev'],
      ['--private-key', keyFile, '--kid', 'dev-1', '--sub', 'svc', '--aud', 'other', '--iss', 'dev'],
      ['--private-key', keyFile, '--kid', 'dev-1', '--sub', 'svc', '--aud', 'meshbus', '--iss', 'evil'],
      ['--private-key', keyFile, '--kid', 'dev-2', '--sub', 'svc', '--aud', 'meshbus', '--iss', 'dev'],
    ]) {
      const r = await runCli(['pub', 'svc.x', 'hi', '--server', s, '--token', await mint(bad)]);
      expect(r.code, bad.join(' ')).toBe(1);
      expect(r.err).toContain('MB_ERR_AUTH_FAILED');
    }
  });
});

it('--jwks-url, --jwks-file, --jwt-audience, --jwt-issuer, --jwt-max-ttl come from flags, MESHBUS_* variables and the config file', () => {
  const file = join(dir, 'cfg.json');
  writeFileSync(file, JSON.stringify({ jwksUrl: 'http://127.0.0.1:1/jwks', jwtAudience: ['a', 'b'] }));
  const c = loadStartConfig({ config: file, 'jwt-max-ttl': '600' }, { MESHBUS_JWT_ISSUER: 'x,y', MESHBUS_JWKS_CACHE_MAX_AGE: '60' });
  expect(c).toMatchObject({ jwksUrl: 'http://127.0.0.1:1/jwks', jwtAudience: ['a', 'b'], jwtIssuer: ['x', 'y'], jwtMaxTtl: 600, jwksCacheMaxAge: 60 });
  expect(loadStartConfig({ 'jwks-file': 'f.json' }, {}).jwksFile).toBe('f.json');
  expect(() => loadStartConfig({ 'jwks-file': 'f.json', 'jwks-url': 'http://x/' }, {})).toThrow(/cannot both/);
});

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { runCli, makePki } from '@meshbus/testkit';

/**
 * `meshbus start` checks every option before any port opens (newcomer
 * leftovers, session 8). The cluster's options (--seeds, --gateways,
 * --advertise) and the HTTP API's (--token without --admin-token) were
 * checked only once the client port listened: the process exited 2, but
 * clients could connect meanwhile to a node about to go. A probe loaded
 * into the process (NODE_OPTIONS --import) says on stderr each time a
 * server starts listening, so the order is checked deterministically,
 * not by racing a connect loop against the exit.
 */

const dir = mkdtempSync(join(tmpdir(), 'meshbus-check-first-'));
const probe = join(dir, 'listen-probe.mjs');
writeFileSync(
  probe,
  `import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  process.stderr.write('probe: listen ' + JSON.stringify(args[0]) + '\\n');
  return listen.apply(this, args);
};
`,
);
const env = { NODE_OPTIONS: `--import ${probe}` };

async function start(args: string[]): Promise<{ code: number | string; err: string }> {
  const port = await freePort();
  return runCli(['start', '--port', String(port), '--http-port', '0', '--ws-port', 'off', '--log-level', 'warn', ...args], 15_000, env);
}

describe('start: a bad option exits 2 before any port opens', () => {
  it('the probe sees a listen (control: a port in use is found by listening, exit 1)', async () => {
    const taken = await freePort();
    const blocker = await holding(taken);
    try {
      const r = await runCli(['start', '--port', String(taken), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'warn'], 15_000, env);
      expect(r.code, r.err).toBe(1);
      expect(r.err).toContain('probe: listen');
    } finally {
      blocker.close();
    }
  });

  for (const [args, says] of [
    [['--cluster-port', '0', '--seeds', 'bad'], '--seeds: "bad" is not host:port'],
    [['--cluster-port', '0', '--region', 'us', '--gateways', 'eu=bad'], '--gateways (region eu): "bad" is not host:port'],
    [['--cluster-port', '0', '--advertise', 'bad'], '--advertise "bad": cluster address is not host:port'],
    [['--token', 'x'], 'needs an admin token'],
  ] as Array<[string[], string]>) {
    it(`start ${args.join(' ')}: exit 2, no port ever listened`, async () => {
      const r = await start(args);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(says);
      expect(r.err).not.toContain('probe: listen');
    });
  }
});

/** A plain TCP server holding `port` (so that `meshbus start` on it fails when it listens). */
async function holding(port: number): Promise<{ close(): void }> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  return { close: () => s.close() };
}

/**
 * TLS files named by their setting (newcomer leftovers, session 8): a missing
 * --tls-cert said "cannot read TLS certificate /x.pem: ENOENT: no such file
 * or directory, open '/x.pem'" (the flag unnamed), and a file that is not PEM
 * said OpenSSL's "PEM routines::no start line" and exited 1. The same three
 * files serve the client, WebSocket, HTTP and cluster (--cluster-tls) ports.
 */
describe('start: TLS files are named by their flag, exit 2, before any port opens', () => {
  const pki = makePki();
  const f = pki.files;
  const notPem = join(dir, 'not.pem');
  writeFileSync(notPem, 'not a certificate\n');
  const otherKey = join(pki.dir, 'node2.key');
  for (const [args, says] of [
    [['--tls-cert', '/nonexistent/cert.pem', '--tls-key', f.key], '--tls-cert: cannot read "/nonexistent/cert.pem": ENOENT'],
    [['--tls-cert', f.cert, '--tls-key', '/nonexistent/key.pem'], '--tls-key: cannot read "/nonexistent/key.pem": ENOENT'],
    [['--tls-cert', f.cert, '--tls-key', f.key, '--tls-ca', '/nonexistent/ca.pem', '--tls-client-auth', 'on'], '--tls-ca: cannot read "/nonexistent/ca.pem": ENOENT'],
    [['--tls-cert', f.cert, '--tls-key', f.key, '--tls-ca', '/nonexistent/ca.pem', '--cluster-tls', 'on', '--cluster-port', '0'], '--tls-ca: cannot read "/nonexistent/ca.pem": ENOENT'],
    [['--tls-cert', dir, '--tls-key', f.key], `--tls-cert: cannot read "${dir}": EISDIR`],
    [['--tls-cert', notPem, '--tls-key', f.key], `--tls-cert: "${notPem}" holds no PEM certificate`],
    [['--tls-cert', f.cert, '--tls-key', notPem], `--tls-key: "${notPem}" holds no PEM private key`],
    [['--tls-cert', f.cert, '--tls-key', otherKey], `--tls-key: "${otherKey}" is not the private key of --tls-cert "${f.cert}"`],
  ] as Array<[string[], string]>) {
    it(`start ${args.map((a) => a.replace(dir, '<tmp>').replace(pki.dir, '<pki>')).join(' ')}`, async () => {
      const r = await start(args);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toContain(says);
      expect(r.err).not.toContain('probe: listen');
    });
  }

  it('MESHBUS_TLS_CERT is named when the path came from the environment', async () => {
    const port = await freePort();
    const r = await runCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--tls-key', f.key], 15_000, { ...env, MESHBUS_TLS_CERT: '/nonexistent/env.pem' });
    expect(r.code, r.err).toBe(2);
    expect(r.err).toContain('MESHBUS_TLS_CERT: cannot read "/nonexistent/env.pem": ENOENT');
  });
});

import { expect, it } from 'vitest';
import { startNode, silentLogger, type Logger, type MeshNode } from '@meshbus/core';
import { startHttp, type HttpServer } from '@meshbus/core/http';
import { connect, type Client } from '@meshbus/sdk';
import { until, cleanups, pkiForFile } from '@meshbus/testkit';
import { ClusterNode } from '../src/index.js';

const pki = pkiForFile();
const cleanup = cleanups();

async function tlsNode(): Promise<MeshNode> {
  const n = await startNode({ port: 0, logger: silentLogger, tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => n.close());
  return n;
}
async function client(url: string, tls: Parameters<typeof connect>[1]['tls']): Promise<Client> {
  const c = await connect(url, { tls, reconnect: false, connectTimeout: 2000 });
  cleanup.push(() => c.close());
  return c;
}

it('serves clients over TLS (tls:// URLs); a client that does not trust the CA is refused', async () => {
  const n = await tlsNode();
  const sub = await client(`tls://127.0.0.1:${n.port}`, { ca: pki.ca });
  const got: string[] = [];
  sub.subscribe('secure.>', { callback: (m) => got.push(Buffer.from(m.data).toString()) });
  await sub.flush();
  const pub = await client(`tls://127.0.0.1:${n.port}`, { ca: pki.ca });
  pub.publish('secure.x', Buffer.from('over tls'));
  await until(() => got.length === 1, 'event over TLS');
  expect(got).toEqual(['over tls']);
  await expect(connect(`tls://127.0.0.1:${n.port}`, { reconnect: false, connectTimeout: 2000 })).rejects.toMatchObject({ code: 'MB_ERR_CONNECT_FAILED' });
  // Plain TCP to a TLS port gets nowhere either.
  await expect(connect(`127.0.0.1:${n.port}`, { reconnect: false, connectTimeout: 1000 })).rejects.toThrow();
});

it('requires client certificates when configured for mutual TLS', async () => {
  const n = await startNode({ port: 0, logger: silentLogger, tls: { cert: pki.cert, key: pki.key, ca: pki.ca, requireClientCert: true } });
  cleanup.push(() => n.close());
  const ok = await client(`tls://127.0.0.1:${n.port}`, { ca: pki.ca, cert: pki.cert2, key: pki.key2 });
  expect(ok.info?.node).toBe(n.id);
  await expect(connect(`tls://127.0.0.1:${n.port}`, { tls: { ca: pki.ca }, reconnect: false, connectTimeout: 2000 })).rejects.toThrow();
  await expect(
    connect(`tls://127.0.0.1:${n.port}`, { tls: { ca: pki.ca, cert: pki.strangerCert, key: pki.strangerKey }, reconnect: false, connectTimeout: 2000 }),
  ).rejects.toThrow();
});

it('links peers over mutual TLS and refuses a peer whose certificate the CA did not sign', async () => {
  const mk = async (cert: string, key: string, seeds: string[] = []): Promise<{ node: MeshNode; cluster: ClusterNode }> => {
    const node = await startNode({ port: 0, logger: silentLogger });
    const cluster = await new ClusterNode(node, { port: 0, seeds, redialMin: 50, redialMax: 300, tls: { cert, key, ca: pki.ca, requireClientCert: true } }).start();
    cleanup.push(() => node.close());
    cleanup.push(() => cluster.stop());
    return { node, cluster };
  };
  const a = await mk(pki.cert, pki.key);
  const b = await mk(pki.cert2, pki.key2, [`127.0.0.1:${a.cluster.port}`]);
  await until(() => a.cluster.link(b.node.id)?.state === 'up', 'TLS peer link');
  const s = await client(`127.0.0.1:${b.node.port}`, undefined);
  const got: string[] = [];
  s.subscribe('t', { callback: (m) => got.push(Buffer.from(m.data).toString()) });
  await s.flush();
  await until(() => {
    let n = 0;
    a.node.table.forEach((x) => void (x.owner.kind === 'peer' && n++));
    return n === 1;
  }, 'interest over TLS');
  const p = await client(`127.0.0.1:${a.node.port}`, undefined);
  p.publish('t', Buffer.from('across'));
  await until(() => got.length === 1, 'event across a TLS link');
  // A stranger's certificate: the TLS handshake fails, no link.
  const stranger = await startNode({ port: 0, logger: silentLogger });
  cleanup.push(() => stranger.close());
  const sc = await new ClusterNode(stranger, {
    port: 0,
    seeds: [`127.0.0.1:${a.cluster.port}`],
    redialMin: 50,
    redialMax: 200,
    tls: { cert: pki.strangerCert, key: pki.strangerKey, ca: pki.ca },
  }).start();
  cleanup.push(() => sc.stop());
  await new Promise((r) => setTimeout(r, 500));
  expect(a.cluster.link(stranger.id)).toBeUndefined();
  expect(sc.link(a.node.id)).toBeUndefined();
});

it('serves the HTTP API over HTTPS', async () => {
  const n = await startNode({ port: 0, logger: silentLogger });
  cleanup.push(() => n.close());
  const http: HttpServer = await startHttp(n, { port: 0, host: '127.0.0.1', tls: { cert: pki.cert, key: pki.key } });
  cleanup.push(() => http.close());
  expect(http.url.startsWith('https://')).toBe(true);
  const https = await import('node:https');
  const status = await new Promise<number>((resolve, reject) => {
    https.get(`${http.url}/healthz`, { ca: pki.ca }, (res) => resolve(res.statusCode ?? 0)).on('error', reject);
  });
  expect(status).toBe(200);
});

it('a TLS peer and a plain one say so on all four sides, naming the setting (they said "no connection", "connection closed", "wrong version number" or a bad magic)', async () => {
  const lines: string[] = [];
  const mk = async (name: string, tls: boolean, seeds: string[] = []): Promise<ClusterNode> => {
    const logger: Logger = { ...silentLogger, warn: (o, msg) => void lines.push(`${name} ${msg ?? ''} ${JSON.stringify(o)}`) };
    const node = await startNode({ port: 0, logger });
    const tlsOpts = tls ? { tls: { cert: pki.cert, key: pki.key, ca: pki.ca, requireClientCert: true } } : {};
    const cluster = await new ClusterNode(node, { port: 0, seeds, redialMin: 50, redialMax: 300, secret: 'mismatch-secret', ...tlsOpts }).start();
    cleanup.push(() => node.close());
    cleanup.push(() => cluster.stop());
    return cluster;
  };
  const setting = 'every node of a mesh needs the same cluster TLS setting (--cluster-tls)';
  const said = (who: string, what: string): Promise<void> => until(() => lines.some((l) => l.startsWith(who) && l.includes(what)), `${who}: ${what}`);
  // A TLS node dialing a plain one.
  const plain = await mk('plain', false);
  await mk('tls-dialer', true, [`127.0.0.1:${plain.port}`]);
  await said('plain closing peer link', `TLS handshake on a plain port: this port does not speak TLS: ${setting}`);
  await said('tls-dialer', `does not speak TLS on its cluster port: ${setting}`);
  // A plain node dialing a TLS one: told in an ERROR it reads.
  const secure = await mk('tls', true);
  await mk('plain-dialer', false, [`127.0.0.1:${secure.port}`]);
  await said('tls peer TLS handshake failed', `a plain connection: ${setting}`);
  await said('plain-dialer cannot link', `MB_ERR_HANDSHAKE_REQUIRED this cluster port speaks TLS: ${setting}`);
});

import { beforeAll } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestPki {
  dir: string;
  ca: string;
  /** Server/peer certificate for 127.0.0.1 and localhost (or `san`), signed by the CA. */
  cert: string;
  key: string;
  /** A second certificate signed by the CA (another peer or a client). */
  cert2: string;
  key2: string;
  /** A certificate from an unrelated CA. */
  strangerCert: string;
  strangerKey: string;
  files: { ca: string; cert: string; key: string };
}

/**
 * Throwaway certificates made with the machine's openssl, in a temp folder.
 * `san`: the names the node certificates carry (`'DNS:localhost'` for a
 * certificate that names a host only, as most do, and no address).
 */
export function makePki(san = 'IP:127.0.0.1,DNS:localhost'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'meshbus-pki-'));
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=meshbus test CA');
  for (const name of ['node', 'node2']) {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', 'ext.cnf');
  }
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'stranger.key', '-out', 'stranger.pem', '-days', '2', '-subj', '/CN=stranger', '-addext', 'subjectAltName=IP:127.0.0.1');
  const r = (f: string): string => readFileSync(join(dir, f), 'utf8');
  return {
    dir,
    ca: r('ca.pem'),
    cert: r('node.pem'),
    key: r('node.key'),
    cert2: r('node2.pem'),
    key2: r('node2.key'),
    strangerCert: r('stranger.pem'),
    strangerKey: r('stranger.key'),
    files: { ca: join(dir, 'ca.pem'), cert: join(dir, 'node.pem'), key: join(dir, 'node.key') },
  };
}

/**
 * One test PKI for the whole file, made before its first test: an object
 * whose fields are filled in `beforeAll` (read them inside tests and hooks,
 * never at the file's top level).
 */
export function pkiForFile(san?: string): TestPki {
  const pki = {} as TestPki;
  beforeAll(() => {
    Object.assign(pki, makePki(san));
  });
  return pki;
}

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ConfigError } from './config-error.js';

/**
 * TLS material for a listener or a dialer, as PEM text. One shape for every
 * TLS endpoint of a node: client TCP, WebSocket (wss), HTTP API and peer links.
 */
export interface TlsConfig {
  cert: string;
  key: string;
  /** CA bundle to verify the other side (clients' certificates, or peers'). */
  ca?: string;
  /** Require and verify a certificate from the other side (mutual TLS). */
  requireClientCert?: boolean;
}

/** Paths of the PEM files, as given on the command line or in a config file. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca?: string;
  requireClientCert?: boolean;
}

/** What each file is called in errors: the setting it came from (bin passes its option names, e.g. tlsCert, which it turns into the flag). */
export interface TlsFileNames {
  cert: string;
  key: string;
  ca: string;
}

const DEFAULT_NAMES: TlsFileNames = { cert: 'TLS certificate', key: 'TLS key', ca: 'TLS CA bundle' };

/** The errno code of a failed read (ENOENT, EACCES, EISDIR), else its message. */
function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : String((e as Error)?.message ?? e);
}

function read(path: string, name: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${name}: cannot read "${path}": ${why(e)}`);
  }
}

/**
 * Loads PEM files and checks that they hold what they should (a certificate,
 * its private key, CA certificates). A ConfigError names the setting and the
 * file: `tlsCert: cannot read "/x.pem": ENOENT`, `tlsKey: "/k.pem" is not
 * the private key of tlsCert "/c.pem"`. Before, a missing file was said as
 * "cannot read TLS certificate /x.pem: ENOENT: no such file…" without the
 * setting, and a file that was not PEM as OpenSSL's "PEM routines::no start
 * line" (exit 1, naming neither).
 */
export function loadTls(files: TlsFiles, names: TlsFileNames = DEFAULT_NAMES): TlsConfig {
  const cert = read(files.cert, names.cert);
  const key = read(files.key, names.key);
  const ca = files.ca !== undefined ? read(files.ca, names.ca) : undefined;
  const check = (ok: () => unknown, problem: string): void => {
    try {
      ok();
    } catch (e) {
      throw new ConfigError(`${problem} (${String((e as Error)?.message ?? e)})`);
    }
  };
  check(() => new X509Certificate(cert), `${names.cert}: "${files.cert}" holds no PEM certificate`);
  check(() => createPrivateKey(key), `${names.key}: "${files.key}" holds no PEM private key`);
  if (ca !== undefined && files.ca !== undefined) check(() => new X509Certificate(ca), `${names.ca}: "${files.ca}" holds no PEM certificate`);
  check(() => createSecureContext({ cert, key }), `${names.key}: "${files.key}" is not the private key of ${names.cert} "${files.cert}"`);
  return {
    cert,
    key,
    ...(ca !== undefined ? { ca } : {}),
    ...(files.requireClientCert ? { requireClientCert: true } : {}),
  };
}

/** Options for tls.createServer / https.createServer from a TlsConfig. */
export function serverTlsOptions(t: TlsConfig): { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: boolean } {
  const mutual = t.requireClientCert === true;
  if (mutual && t.ca === undefined) throw new ConfigError('mutual TLS needs a CA bundle to verify the other side');
  return { cert: t.cert, key: t.key, ...(t.ca !== undefined ? { ca: t.ca } : {}), requestCert: mutual, rejectUnauthorized: mutual };
}

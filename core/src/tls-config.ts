import { readFileSync } from 'node:fs';
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

function read(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read TLS ${what} ${path}: ${(e as Error).message}`);
  }
}

/** Loads PEM files; a ConfigError names the file that could not be read. */
export function loadTls(files: TlsFiles): TlsConfig {
  return {
    cert: read(files.cert, 'certificate'),
    key: read(files.key, 'key'),
    ...(files.ca !== undefined ? { ca: read(files.ca, 'CA bundle') } : {}),
    ...(files.requireClientCert ? { requireClientCert: true } : {}),
  };
}

/** Options for tls.createServer / https.createServer from a TlsConfig. */
export function serverTlsOptions(t: TlsConfig): { cert: string; key: string; ca?: string; requestCert: boolean; rejectUnauthorized: boolean } {
  const mutual = t.requireClientCert === true;
  if (mutual && t.ca === undefined) throw new ConfigError('mutual TLS needs a CA bundle to verify the other side');
  return { cert: t.cert, key: t.key, ...(t.ca !== undefined ? { ca: t.ca } : {}), requestCert: mutual, rejectUnauthorized: mutual };
}

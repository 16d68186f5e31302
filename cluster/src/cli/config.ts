import { readFileSync } from 'node:fs';
import { ConfigError } from '@meshbus/core';

/**
 * The settings of `meshbus start`, from (lowest to highest precedence)
 * embedded defaults, a JSON config file, MESHBUS_* environment variables and
 * flags. Names are the flags' camelCase forms, e.g. clusterPort.
 */
export interface StartConfig {
  host: string;
  port: number;
  /** HTTP API port; 'off' disables it. */
  httpPort: number | undefined;
  httpHost: string | undefined;
  /** WebSocket gateway port (browsers, mobile); 'off' disables it. */
  wsPort: number | undefined;
  /** Origins allowed to open a WebSocket (browsers' Origin header); empty: any. */
  wsOrigins: string[];
  /** permessage-deflate on the WebSocket gateway: 'off' (default) or 'on'. */
  wsDeflate: 'off' | 'on';
  clusterPort: number | undefined;
  clusterHost: string;
  advertise: string | undefined;
  seeds: string[];
  clusterSecret: string | undefined;
  mesh: 'full' | 'partial';
  name: string;
  token: string | undefined;
  adminToken: string | undefined;
  /** 'on': start the HTTP API without --admin-token where it is otherwise refused (non-loopback --http-host, or client tokens required). */
  httpInsecureOpen: 'on' | 'off';
  maxPayload: number | undefined;
  maxConnections: number | undefined;
  maxSubscriptions: number | undefined;
  pingInterval: number | undefined;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  workers: number;
  /** HS256 secret for client JWTs. */
  jwtSecret: string | undefined;
  /** File with the Ed25519 public key (PEM) for EdDSA client JWTs. */
  jwtPublicKey: string | undefined;
  /** Longest a client JWT is trusted, seconds (NodeOptions.maxTokenLifetime). */
  maxTokenLifetime: number | undefined;
  maxConnectionsPerIp: number | undefined;
  publishRate: number | undefined;
  /** PEM files: with cert and key, clients (tcp, ws, http) are served over TLS. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** CA bundle that signs client certificates (with tlsClientAuth) and peers' (with clusterTls). */
  tlsCa: string | undefined;
  /** 'on': clients must present a certificate signed by tlsCa. */
  tlsClientAuth: 'on' | 'off';
  /** 'on': peer links use TLS with the same certificate, mutual with tlsCa. */
  clusterTls: 'on' | 'off';
  /** Redis URL: turns durability on (history, recovery, latest values, durable queues, delayed publish). */
  redis: string | undefined;
  /** Key prefix in Redis. Default meshbus:. */
  redisPrefix: string | undefined;
  /**
   * Durable topic patterns, each `pattern[|history=N][|age=MS][|latest]`,
   * e.g. `orders.>|history=10000|age=86400000`, `prices.>|latest`.
   */
  durable: string[];
}

export const START_DEFAULTS: StartConfig = {
  host: '127.0.0.1',
  port: 4480,
  httpPort: 8480,
  httpHost: undefined,
  wsPort: 8481,
  wsOrigins: [],
  wsDeflate: 'off',
  clusterPort: undefined,
  clusterHost: '127.0.0.1',
  advertise: undefined,
  seeds: [],
  clusterSecret: undefined,
  mesh: 'full',
  name: '',
  token: undefined,
  adminToken: undefined,
  httpInsecureOpen: 'off',
  maxPayload: undefined,
  maxConnections: undefined,
  maxSubscriptions: undefined,
  pingInterval: undefined,
  logLevel: 'info',
  workers: 1,
  redis: undefined,
  redisPrefix: undefined,
  durable: [],
  jwtSecret: undefined,
  jwtPublicKey: undefined,
  maxTokenLifetime: undefined,
  maxConnectionsPerIp: undefined,
  publishRate: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsCa: undefined,
  tlsClientAuth: 'off',
  clusterTls: 'off',
};

type Kind = 'string' | 'int' | 'list' | 'port';
const KINDS: Record<keyof StartConfig, Kind> = {
  host: 'string',
  port: 'port',
  httpPort: 'port',
  httpHost: 'string',
  wsPort: 'port',
  wsOrigins: 'list',
  wsDeflate: 'string',
  clusterPort: 'port',
  clusterHost: 'string',
  advertise: 'string',
  seeds: 'list',
  clusterSecret: 'string',
  mesh: 'string',
  name: 'string',
  token: 'string',
  adminToken: 'string',
  httpInsecureOpen: 'string',
  maxPayload: 'int',
  maxConnections: 'int',
  maxSubscriptions: 'int',
  pingInterval: 'int',
  logLevel: 'string',
  workers: 'int',
  redis: 'string',
  redisPrefix: 'string',
  durable: 'list',
  jwtSecret: 'string',
  jwtPublicKey: 'string',
  maxTokenLifetime: 'int',
  maxConnectionsPerIp: 'int',
  publishRate: 'int',
  tlsCert: 'string',
  tlsKey: 'string',
  tlsCa: 'string',
  tlsClientAuth: 'string',
  clusterTls: 'string',
};

export const START_KEYS = Object.keys(KINDS) as Array<keyof StartConfig>;

/** "clusterPort" → "cluster-port". */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

function envName(key: string): string {
  return 'MESHBUS_' + flagName(key).replace(/-/g, '_').toUpperCase();
}

function coerce(key: keyof StartConfig, raw: unknown, where: string): unknown {
  const kind = KINDS[key];
  if ((key === 'wsPort' || key === 'httpPort') && raw === 'off') return undefined;
  if (kind === 'list') {
    if (Array.isArray(raw) && raw.every((x) => typeof x === 'string')) return raw;
    if (typeof raw === 'string') return raw.split(',').map((s) => s.trim()).filter(Boolean);
    throw new ConfigError(`${where}: ${key} must be a comma-separated list`);
  }
  if (kind === 'string') {
    if (typeof raw !== 'string') throw new ConfigError(`${where}: ${key} must be a string`);
    return raw;
  }
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 0) throw new ConfigError(`${where}: ${key} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  if (kind === 'port' && n > 65535) throw new ConfigError(`${where}: ${key} must be a port (0..65535), got ${n}`);
  return n;
}

/** `pattern[|history=N][|age=MS][|latest]` → a durable topic rule. */
export function parseDurableTopic(spec: string): { pattern: string; history?: { size?: number; maxAgeMs?: number }; latest?: boolean } {
  const [pattern, ...opts] = spec.split('|').map((x) => x.trim());
  if (!pattern) throw new ConfigError(`--durable: empty pattern in "${spec}"`);
  const t: { pattern: string; history?: { size?: number; maxAgeMs?: number }; latest?: boolean } = { pattern };
  for (const o of opts) {
    const m = /^(history|age)=(\d+)$/.exec(o);
    if (m) {
      t.history ??= {};
      if (m[1] === 'history') t.history.size = Number(m[2]);
      else t.history.maxAgeMs = Number(m[2]);
    } else if (o === 'latest') t.latest = true;
    else throw new ConfigError(`--durable: unknown option "${o}" in "${spec}" (history=N, age=MS, latest)`);
  }
  return t;
}

export function loadStartConfig(flags: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): StartConfig {
  const cfg: Record<string, unknown> = { ...START_DEFAULTS };
  const file = (flags.config as string | undefined) ?? env.MESHBUS_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null) throw new ConfigError(`config file ${file} must hold a JSON object`);
    for (const [k, v] of Object.entries(parsed)) {
      if (!(k in KINDS)) throw new ConfigError(`config file ${file}: unknown setting "${k}" (known: ${START_KEYS.join(', ')})`);
      cfg[k] = coerce(k as keyof StartConfig, v, file);
    }
  }
  for (const k of START_KEYS) {
    const v = env[envName(k)];
    if (v !== undefined && v !== '') cfg[k] = coerce(k, v, envName(k));
  }
  for (const k of START_KEYS) {
    const v = flags[flagName(k)];
    if (v !== undefined) cfg[k] = coerce(k, v, `--${flagName(k)}`);
  }
  const c = cfg as unknown as StartConfig;
  if (c.mesh !== 'full' && c.mesh !== 'partial') throw new ConfigError(`--mesh must be 'full' or 'partial', got ${c.mesh}`);
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(c.logLevel)) throw new ConfigError(`--log-level must be debug, info, warn, error or silent`);
  if (c.seeds.length > 0 && c.clusterPort === undefined) c.clusterPort = 4481;
  if (c.wsDeflate !== 'off' && c.wsDeflate !== 'on') throw new ConfigError(`--ws-deflate must be 'on' or 'off', got ${c.wsDeflate}`);
  if (c.httpInsecureOpen !== 'off' && c.httpInsecureOpen !== 'on') throw new ConfigError(`--http-insecure-open must be 'on' or 'off', got ${c.httpInsecureOpen}`);
  if (c.workers < 1) throw new ConfigError('--workers must be at least 1');
  for (const k of ['tlsClientAuth', 'clusterTls'] as const) {
    if (c[k] !== 'on' && c[k] !== 'off') throw new ConfigError(`--${flagName(k)} must be on or off`);
  }
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) throw new ConfigError('--tls-cert and --tls-key go together');
  if ((c.tlsClientAuth === 'on' || c.clusterTls === 'on') && (c.tlsCert === undefined || c.tlsCa === undefined)) {
    throw new ConfigError('--tls-client-auth and --cluster-tls need --tls-cert, --tls-key and --tls-ca');
  }
  return c;
}

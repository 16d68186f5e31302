import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { ClientError, thrownText } from '@meshbus/proto';
import { UsageError, noExtraArgs, stringOption, type ParsedArgs } from './command-spec.js';
import { CLUSTER, SERVER } from './command-specs.js';
import { forTerminal } from './msg-format.js';

/** The parts of GET /v1/node that `meshbus cluster` prints. */
export interface NodeInfo {
  id: string;
  name: string;
  version: string;
  address: string;
  uptimeSeconds: number;
  ready: boolean;
  draining: boolean;
  connections: number;
  subscriptions: number;
}

/** The parts of GET /v1/cluster that `meshbus cluster` prints. */
export interface ClusterInfo {
  self: string;
  ready: boolean;
  clustered: boolean;
  /** `clientAddress` (a node of this version or later): where that node's clients connect; `address` is ambiguous (this node's client address, a peer's cluster address). */
  nodes: { id: string; name: string; address: string; clientAddress?: string; self: boolean; state: string }[];
  /** `client`: the address the peer's clients connect to (`address` is its cluster address). */
  peers: { id: string; client?: string; rttMs?: number; msgsIn: number; msgsOut: number }[];
}

/** Where the HTTP API is and how to reach it: --http / MESHBUS_HTTP, --admin-token / MESHBUS_ADMIN_TOKEN, --tls-ca / MESHBUS_TLS_CA. */
function httpTarget(p: ParsedArgs, env: NodeJS.ProcessEnv = process.env): { base: string; token: string | undefined; ca: string | undefined } {
  const raw = stringOption(p, 'http') ?? (env.MESHBUS_HTTP || 'http://127.0.0.1:8480');
  let url: URL;
  try {
    url = new URL(/^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new UsageError(`--http "${raw}": not a URL (e.g. http://127.0.0.1:8480)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--http "${raw}": must be http:// or https://`);
  const caFile = stringOption(p, 'tls-ca') ?? (env.MESHBUS_TLS_CA || undefined);
  let ca: string | undefined;
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile, 'utf8');
    } catch (e) {
      throw new UsageError(`--tls-ca "${caFile}": cannot read it (${(e as NodeJS.ErrnoException).code ?? thrownText(e)})`);
    }
  }
  return { base: url.href.replace(/\/$/, ''), token: stringOption(p, 'admin-token') ?? (env.MESHBUS_ADMIN_TOKEN || undefined), ca };
}

/** GET `base + path` as JSON; ClientError MB_ERR_CONNECT_FAILED when unreachable, MB_ERR_AUTH_FAILED on 401/403, the body's code otherwise. */
async function getJson<T>(base: string, path: string, token: string | undefined, ca: string | undefined): Promise<T> {
  const request = base.startsWith('https:') ? httpsRequest : httpRequest;
  return new Promise<T>((resolve, reject) => {
    const req = request(base + path, { headers: token ? { authorization: `Bearer ${token}` } : {}, timeout: 5000, ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        // With a token given, asking for one is wrong: the node refused that token.
        const hint = !token ? 'give --admin-token' : 'the node refused the --admin-token given';
        if (status === 401 || status === 403) return reject(new ClientError('MB_ERR_AUTH_FAILED', `${base}${path}: HTTP ${status} (${hint})`));
        if (status !== 200) return reject(new ClientError('MB_ERR_CONNECT_FAILED', `${base}${path}: HTTP ${status} ${body.slice(0, 200)}`));
        try {
          resolve(JSON.parse(body) as T);
        } catch {
          reject(new ClientError('MB_ERR_CONNECT_FAILED', `${base}${path}: not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5000 ms')));
    req.on('error', (e: Error) => reject(new ClientError('MB_ERR_CONNECT_FAILED', `cannot reach the HTTP API at ${base} (${e.message})`, { cause: e })));
    req.end();
  });
}

/** Reads GET /v1/node and GET /v1/cluster of the node at `base`. */
export async function readCluster(base: string, token?: string, ca?: string): Promise<{ node: NodeInfo; cluster: ClusterInfo }> {
  const [node, cluster] = await Promise.all([getJson<NodeInfo>(base, '/v1/node', token, ca), getJson<ClusterInfo>(base, '/v1/cluster', token, ca)]);
  return { node, cluster };
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

/** The views as printed: the node asked, then one row per node of the mesh. */
export function formatCluster(v: { node: NodeInfo; cluster: ClusterInfo }): string {
  const n = v.node;
  const state = n.draining ? 'draining' : n.ready ? 'ready' : 'not ready';
  const head = `node ${n.id}${n.name ? ` (${n.name})` : ''}  meshbus ${n.version}  ${n.address}  ${state}  up ${n.uptimeSeconds}s  ${n.connections} connection(s), ${n.subscriptions} subscription(s)`;
  const peers = new Map(v.cluster.peers.map((p) => [p.id, p]));
  const rows = v.cluster.nodes.map((x) => {
    const p = peers.get(x.id);
    // The address clients connect to (what --server takes), for every row: a peer's `address` in
    // /v1/cluster is its cluster port, so the column mixed this node's client port with the
    // others' cluster ports, and `sub --server <that>` reached a cluster port.
    // `clientAddress` says it unambiguously (a node bound to every interface: the address this command reached it at).
    const addr = x.clientAddress || (x.self ? x.address : (p?.client ?? x.address));
    return [x.id + (x.self ? ' *' : ''), x.name || '-', addr || '-', x.state, p?.rttMs !== undefined ? p.rttMs.toFixed(2) : '-', p ? String(p.msgsIn) : '-', p ? String(p.msgsOut) : '-'];
  });
  const mesh = v.cluster.clustered ? `${v.cluster.nodes.length} node(s)` : 'not clustered';
  return `${head}\n${mesh}, mesh ${v.cluster.ready ? 'joined' : 'not joined yet'} (* = this node)\n${table(['ID', 'NAME', 'ADDRESS', 'STATE', 'RTT MS', 'MSGS IN', 'MSGS OUT'], rows)}\n`;
}

async function show(p: ParsedArgs): Promise<number> {
  const t = httpTarget(p);
  const v = await readCluster(t.base, t.token, t.ca);
  process.stdout.write(p.values.json === true ? JSON.stringify(v) + '\n' : forTerminal(formatCluster(v)));
  return 0;
}

export async function runCluster(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 0, CLUSTER);
  return show(p);
}

/** `meshbus server list`: the one sub-command of `server`. */
export async function runServer(p: ParsedArgs): Promise<number> {
  noExtraArgs(p, 1, SERVER);
  const sub = p.positionals[0];
  if (sub !== 'list') throw new UsageError(sub === undefined ? 'server: missing sub-command (usage: meshbus server list)' : `server: unknown sub-command "${sub}" (usage: meshbus server list)`);
  return show(p);
}

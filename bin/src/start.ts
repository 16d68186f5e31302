import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, MeshNode, jsonLogger, randomId, resolveDurable, type DurableOptions, type JwtKeys, type Logger, type TlsConfig, loadTls } from '@meshbus/core';
import type { WsGateway } from '@meshbus/core/ws';
import { checkHttpOptions, checkPluginOptions, startHttpOnDemand, type HttpOptions, type OnDemandHttpServer } from '@meshbus/core/http';
import type { ClusterNode, ClusterOptions, LeafIdentity } from '@meshbus/cluster';
import { tuneAllocator } from '@meshbus/native';
import { holdIncrementalMarking } from './gc-schedule.js';
import { endStartupTiering } from './startup-tiering.js';
import { isWildcardHost, parseDurableTopic, parseGateways, type StartConfig } from './config.js';

/** A running server: the node, its cluster membership and the HTTP API, stopped together. */
export interface RunningServer {
  node: MeshNode;
  cluster: ClusterNode | undefined;
  /** The HTTP API (undefined with --http-port off); fastify loads on its first request (issue #15). */
  http: OnDemandHttpServer | undefined;
  /** The WebSocket gateway (undefined with --ws-port off). */
  ws: WsGateway | undefined;
  stop(): Promise<void>;
}

/** Starts everything `meshbus start` runs, from a resolved config. */
/** Who a node started from `cfg` is: its id, its logger and, for a leaf with --leaf-key, the key its id was made from. */
export interface NodeIdentity {
  id: string;
  logger: Logger;
  leafKey?: LeafIdentity;
}

/**
 * The identity a node started from `cfg` will use (made first, so the process can log through it before the
 * node starts). With --leaf-key the id is made from the key (@meshbus/cluster leafIdentity, loaded only then);
 * ConfigError for a malformed key.
 */
export async function nodeIdentity(cfg: StartConfig): Promise<NodeIdentity> {
  const leafKey = cfg.leafKey === undefined ? undefined : (await import('@meshbus/cluster')).leafIdentity(cfg.leafKey);
  const id = leafKey?.id ?? randomId();
  return { id, logger: jsonLogger(cfg.logLevel, { node: id, ...(cfg.name ? { name: cfg.name } : {}) }), ...(leafKey ? { leafKey } : {}) };
}

/**
 * `httpExtra`: what a worker adds to its HTTP API (its metrics label; /metrics and /v1/workers gathered by the primary).
 * `ownClusterPort`: the cluster port is one a `--workers` worker chose itself (workers.ts; on loopback without
 * --cluster-port), which --advertise cannot name: it is not the cluster address, but still names the machine
 * to other nodes' clients (advertisedHost: the TCP and WebSocket URLs they fail over to).
 */
export async function startServer(
  cfg: StartConfig,
  logger?: Logger,
  given?: NodeIdentity,
  httpExtra: Pick<HttpOptions, 'metricsLabels' | 'metricsSource' | 'workers'> = {},
  ownClusterPort = false,
): Promise<RunningServer> {
  const clientTls = tlsFor(cfg, cfg.tlsClientAuth === 'on');
  const clusterTls = cfg.clusterTls === 'on' ? tlsFor(cfg, true) : undefined;
  const identity = given ?? (await nodeIdentity(cfg));
  const id = identity.id;
  const log = logger ?? identity.logger;
  // This process is the node's: glibc keeps a free top of heap for the per-read buffers (native/README).
  log.debug({ allocator: tuneAllocator() }, 'C allocator');
  const durable = {
    prefix: cfg.redisPrefix,
    waitReplicas: cfg.redisWaitReplicas,
    topics: cfg.durable.map(parseDurableTopic),
    quota: { maxEventBytes: cfg.durableMaxEventBytes, delayedEvents: cfg.durableDelayedEvents, delayedBytes: cfg.durableDelayedBytes },
    queues: { maxJobs: cfg.durableQueueMaxJobs, inactiveMs: cfg.durableQueueInactive, maxPerHost: cfg.durableQueueMaxPerHost },
  };
  if (cfg.redis === undefined) unusedDurableSettings(cfg, durable, log);
  // RFC 7518 3.2: an HS256 key of at least the hash's 256 bits. Said, not refused: whoever guesses a short one mints tokens.
  const jwtSecretBytes = cfg.jwtSecret === undefined ? 32 : Buffer.byteLength(cfg.jwtSecret);
  if (jwtSecretBytes < 32) log.warn({ bytes: jwtSecretBytes }, '--jwt-secret is shorter than 32 bytes (RFC 7518 3.2: an HS256 key of at least 256 bits): use a random one, e.g. openssl rand -hex 32');
  const node = new MeshNode({
    id,
    // A keyed leaf's hubs take only inboxes that start with its id (cluster leaf-rules.ts).
    nodeIdInClientIds: identity.leafKey !== undefined,
    logger: log,
    host: cfg.host,
    port: cfg.port,
    name: cfg.name,
    token: cfg.token,
    maxPayload: cfg.maxPayload,
    inputBudget: cfg.inputBudget,
    inputStall: cfg.inputStall,
    outboundBudget: cfg.outboundBudget,
    maxConnections: cfg.maxConnections,
    jwt: jwtKeys(cfg),
    maxTokenLifetime: cfg.maxTokenLifetime,
    tls: clientTls,
    maxConnectionsPerIp: cfg.maxConnectionsPerIp,
    publishRate: cfg.publishRate,
    maxSubscriptions: cfg.maxSubscriptions,
    maxNodeSubscriptions: cfg.maxNodeSubscriptions,
    maxSubscriptionsPerIp: cfg.maxSubscriptionsPerIp,
    pingInterval: cfg.pingInterval,
    otlpEndpoint: cfg.otlpEndpoint,
    durable: cfg.redis ? { redis: cfg.redis, ...durable } : undefined,
  });
  const httpOptions: HttpOptions | undefined =
    cfg.httpPort === undefined
      ? undefined
      : {
          port: cfg.httpPort,
          host: cfg.httpHost ?? cfg.host,
          maxConnections: cfg.httpMaxConnections,
          maxConnectionsPerIp: cfg.httpMaxConnectionsPerIp,
          maxPipelined: cfg.httpMaxPipelined,
          maxWaiting: cfg.httpMaxWaiting,
          adminToken: cfg.adminToken,
          insecureOpenAdmin: cfg.httpInsecureOpen === 'on',
          tls: clientTls,
          logger: cfg.logLevel === 'silent' ? false : cfg.logLevel,
          ...httpExtra,
        };
  // Every option is checked before any port opens (the node's were, in its constructor): the
  // cluster's and the HTTP API's were checked only once the client port listened, so with a bad
  // --seeds, --gateways, --advertise or --token without --admin-token clients could connect, for
  // a moment, to a node that then exited 2.
  if (httpOptions) {
    checkHttpOptions(node, httpOptions);
    checkPluginOptions({ ...httpOptions, node });
  }
  let clusterLayer: typeof import('@meshbus/cluster') | undefined;
  let clusterOptions: ClusterOptions | undefined;
  if (cfg.clusterPort !== undefined) {
    // Loaded only for a clustered node: a single node's start-up does not pay for it (issue #15).
    clusterLayer = await import('@meshbus/cluster');
    clusterOptions = {
      host: cfg.clusterHost,
      port: cfg.clusterPort,
      advertise: ownClusterPort ? undefined : cfg.advertise,
      seeds: cfg.seeds,
      secret: cfg.clusterSecret,
      ...(identity.leafKey ? { leafKey: identity.leafKey } : {}),
      deniedLeafKeys: cfg.denyLeafKeys,
      leafPermissions: leafPermissionsFile(cfg.leafPermissions),
      tls: clusterTls,
      mode: cfg.mesh,
      readyWait: cfg.readyWait,
      region: cfg.region,
      gateways: parseGateways(cfg.gateways),
      clientAdvertise: cfg.clientAdvertise,
      maxLeafLinks: cfg.maxLeafLinks,
      maxLeafLinksPerKey: cfg.maxLeafLinksPerKey,
      maxGatewayLinks: cfg.maxGatewayLinks,
    };
    clusterLayer.checkClusterOptions(clusterOptions, node.options.name, id, node.options.nodeIdInClientIds);
  }
  if (cfg.wsAdvertise !== undefined) {
    if (cfg.wsPort === undefined) throw new ConfigError('wsAdvertise needs the WebSocket gateway (wsPort is off)');
    const problem = (await import('@meshbus/core/ws')).wsUrlProblem(cfg.wsAdvertise);
    if (problem) throw new ConfigError(`advertised WebSocket URL "${cfg.wsAdvertise}": ${problem}`);
  }
  await node.listen();
  // And V8's marking while the heap is small (gc-schedule.ts), once every option passed its checks.
  const gc = holdIncrementalMarking({ onChange: (state, why) => log.debug({ incrementalMarking: state, why }, 'V8 GC schedule') });
  if (gc.state === 'operator flags') log.debug({ incrementalMarking: gc.state }, 'V8 GC schedule');
  let cluster: ClusterNode | undefined;
  let http: OnDemandHttpServer | undefined;
  let ws: WsGateway | undefined;
  try {
    if (cfg.wsPort !== undefined) ws = await startWs(node, cfg, log);
    if (clusterLayer && clusterOptions) {
      const clientAdvertise = cfg.clientAdvertise ?? advertisedHost(cfg, node.port);
      cluster = await new clusterLayer.ClusterNode(node, { ...clusterOptions, clientAdvertise }).start();
    }
    // fastify, the dashboard and prom-client load on the first request (or now, for a cluster or a worker).
    if (httpOptions) http = await startHttpOnDemand(node, { ...httpOptions, cluster });
  } catch (e) {
    gc.release();
    endStartupTiering();
    await ws?.close();
    await cluster?.stop();
    await node.close();
    throw e;
  }
  // Started (client port, gateway, peer port, HTTP port: tens of ms after the client port listens):
  // V8 optimizes what runs hot from here (startup-tiering.ts).
  endStartupTiering();
  return {
    node,
    cluster,
    http,
    ws,
    async stop() {
      // Clients first, while the peer links are up: the events the node still routes for
      // them reach the mesh, and their GOODBYE names the peers to reconnect to. Stopping
      // the cluster first lost both (cluster/test/shutdown-order.test.ts).
      await node.shutdown();
      await cluster?.stop();
      await ws?.close();
      await http?.close();
      gc.release();
    },
  };
}

/**
 * The WebSocket gateway on its own port. When that port is the default (not
 * chosen) and already taken, e.g. a second node on one machine with only
 * --port changed, the node runs without it and says so: set --ws-port.
 */
async function startWs(node: MeshNode, cfg: StartConfig, log: Logger): Promise<WsGateway | undefined> {
  // Loaded only with the ws port on: a node without it never loads `ws` (issue #15).
  const { WsGateway, DEFAULT_WS_PORT } = await import('@meshbus/core/ws');
  const ws = new WsGateway(node, {
    host: cfg.host,
    port: cfg.wsPort,
    origins: cfg.wsOrigins,
    perMessageDeflate: cfg.wsDeflate === 'on',
    tls: tlsFor(cfg, cfg.tlsClientAuth === 'on'),
    advertise: cfg.wsAdvertise,
  });
  try {
    await ws.listen();
    // Bound to every interface: the --advertise host, as for TCP clients (advertisedHost).
    const host = cfg.wsAdvertise === undefined ? advertisedHost(cfg, ws.port) : undefined;
    if (host !== undefined) node.hooks.wsUrl = `${cfg.tlsCert !== undefined && cfg.tlsKey !== undefined ? 'wss' : 'ws'}://${host}/`;
    return ws;
  } catch (e) {
    await ws.close();
    if (cfg.wsPort !== DEFAULT_WS_PORT || !/already in use/.test((e as Error).message)) throw e;
    log.warn({ port: cfg.wsPort }, 'ws gateway not started: the default ws port is in use (set --ws-port, or --ws-port off)');
    return undefined;
  }
}

/**
 * The host:port other nodes give their clients for this node's `port`, when
 * --host is every interface and --advertise names the machine: the
 * --advertise host. Otherwise undefined: the bound host is said (a wildcard
 * replaced, where a peer sees it, by the address that peer reaches this node
 * at: cluster/peer-info.ts). A client port bound to one address is reachable
 * there only: the --advertise host, when the cluster port is on another
 * interface, named an address where no client port listened (a client that
 * failed over to it was refused), so it is not used then (--client-advertise
 * and --ws-advertise say anything else).
 */
function advertisedHost(cfg: StartConfig, port: number): string | undefined {
  if (cfg.advertise === undefined || !isWildcardHost(cfg.host)) return undefined;
  return `${cfg.advertise.replace(/:\d+$/, '')}:${port}`;
}

/** Client token keys and claim rules from --jwt-secret, --jwt-public-key (a PEM file), --jwks-url / --jwks-file and --jwt-*. */
function jwtKeys(cfg: StartConfig): JwtKeys | undefined {
  if (cfg.jwtSecret === undefined && cfg.jwtPublicKey === undefined && cfg.jwksUrl === undefined && cfg.jwksFile === undefined) return undefined;
  let pem: string | undefined;
  if (cfg.jwtPublicKey !== undefined) {
    try {
      pem = readFileSync(cfg.jwtPublicKey, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read --jwt-public-key ${cfg.jwtPublicKey}: ${(e as Error).message}`);
    }
  }
  if (cfg.jwksFile !== undefined && !existsSync(cfg.jwksFile)) throw new ConfigError(`--jwks-file ${cfg.jwksFile} does not exist`);
  return {
    hs256Secret: cfg.jwtSecret,
    ed25519PublicKey: pem,
    jwksUrl: cfg.jwksUrl,
    jwksFile: cfg.jwksFile,
    jwksCacheMaxAge: cfg.jwksCacheMaxAge,
    audience: cfg.jwtAudience.length > 0 ? cfg.jwtAudience : undefined,
    issuer: cfg.jwtIssuer.length > 0 ? cfg.jwtIssuer : undefined,
    maxTtl: cfg.jwtMaxTtl,
  };
}

/**
 * TLS material from --tls-cert/--tls-key/--tls-ca (the client, WebSocket,
 * HTTP and cluster listeners all use these three); undefined without a
 * certificate. A file that cannot be read or holds the wrong thing is a
 * ConfigError naming its setting (tlsCert, which inOperatorTerms says as
 * --tls-cert, MESHBUS_TLS_CERT or the config file's key) and the file.
 */
function tlsFor(cfg: StartConfig, mutual: boolean): TlsConfig | undefined {
  if (cfg.tlsCert === undefined || cfg.tlsKey === undefined) return undefined;
  return loadTls({ cert: cfg.tlsCert, key: cfg.tlsKey, ca: cfg.tlsCa, requireClientCert: mutual }, { cert: 'tlsCert', key: 'tlsKey', ca: 'tlsCa' });
}

/** The durable settings that mean something only with --redis. */
const DURABLE_ONLY = ['durable', 'redisPrefix', 'redisWaitReplicas', 'durableMaxEventBytes', 'durableDelayedEvents', 'durableDelayedBytes', 'durableQueueMaxJobs', 'durableQueueInactive', 'durableQueueMaxPerHost'] as const;

/**
 * Durable settings given without --redis: checked as they would be with it
 * (a bad rule or value exits 2, as it does with --redis), and said at warn
 * to do nothing. Before, they were skipped unread: `--durable 'a.>|histroy=1'`
 * ran with no word, and an operator who forgot --redis believed the topic durable.
 */
function unusedDurableSettings(cfg: StartConfig, durable: Omit<DurableOptions, 'redis'>, log: Logger): void {
  const given = DURABLE_ONLY.filter((k) => (k === 'durable' ? cfg.durable.length > 0 : cfg[k] !== undefined));
  if (given.length === 0) return;
  // Parsing only (no connection is made): the address is a stand-in.
  resolveDurable({ redis: 'redis://localhost', ...durable });
  log.warn({ settings: given }, 'durable settings given without --redis: they do nothing (no durable topic, history, latest value, queue or delayed publish)');
}


/** The rules of --leaf-permissions (a JSON file), checked by the cluster; ConfigError naming the flag when unreadable. */
function leafPermissionsFile(file: string | undefined): ClusterOptions['leafPermissions'] {
  if (file === undefined) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterOptions['leafPermissions'];
  } catch (e) {
    throw new ConfigError(`--leaf-permissions ${file}: ${(e as Error).message}`);
  }
}

import { hostPort } from '@meshbus/proto';
import type { ClientSession } from '../client-session.js';
import type { ClusterView, LinkView, PeerView } from '../cluster-view.js';
import type { MeshNode } from '../node.js';
import { HttpError } from './http-errors.js';
import { memoryNow } from '../memory-now.js';
import { outboundBudgetOf } from '../outbound-budget.js';
import { reachableAddress } from '../loopback.js';
import type { RateHistory, RateSample } from './rate-history.js';
import { DEFAULT_HTTP_MAX_WAITING } from './http-options.js';
import { waitingCount } from './waiting-calls.js';
import { pageOf } from './page-select.js';

/** The JSON views of GET /v1/*: plain objects built from the node's state at call time. */

export interface ViewContext {
  node: MeshNode;
  cluster: ClusterView | undefined;
  version: string;
  httpPort: number;
  /** This API's maxWaiting (GET /v1/node `limits.httpMaxWaiting`). */
  maxWaiting?: number;
}

const address = (n: MeshNode): string => hostPort(n.host, n.port);

/**
 * The address clients use to reach this node: the one it announces to its
 * peers (ClusterView.self: `--client-advertise`, `--advertise`...), else its
 * client listener's; a wildcard host (bound to every interface) replaced by
 * `localIp`, the address the HTTP caller reached this machine at
 * (reachableAddress, the rule peers apply to each other's info).
 */
export function clientAddress(ctx: ViewContext, localIp: string | undefined): string {
  return reachableAddress(ctx.cluster?.self?.client ?? address(ctx.node), localIp);
}

export function readiness(ctx: ViewContext): { ready: boolean; listening: boolean; joined: boolean; draining: boolean } {
  const listening = ctx.node.port > 0 && !ctx.node.draining;
  const c = ctx.cluster;
  // `joined` is false after the cluster's wait for seeds ran out with none answering: ready anyway, not joined.
  return { ready: listening && (c?.ready() ?? true), listening, joined: c === undefined || (c.joined?.() ?? c.ready()), draining: ctx.node.draining };
}

/** GET /v1/node; `localIp`: the address the request reached this machine at. */
export function nodeView(ctx: ViewContext, localIp?: string) {
  const n = ctx.node;
  const o = n.options;
  const uptimeMs = Date.now() - n.startedAt;
  const outbound = outboundBudgetOf(n.inputBudget, o.outboundBudget);
  return {
    id: n.id,
    name: o.name,
    version: ctx.version,
    runtime: `node ${process.version}`,
    startedAt: new Date(n.startedAt).toISOString(),
    uptimeSeconds: Math.floor(uptimeMs / 1000),
    address: clientAddress(ctx, localIp),
    // The client listener's bind address as configured (0.0.0.0:4480 when bound to every interface).
    listen: address(n),
    httpPort: ctx.httpPort,
    scanner: n.scanner.name,
    auth: o.token !== undefined,
    ...readiness(ctx),
    connections: n.connectionCount,
    subscriptions: n.table.size,
    // What maxNodeSubscriptions bounds (SPEC 10.10): client subscriptions by weight.
    subscriptionWeight: n.table.clientWeight,
    // What the outbound queues and replay buffers hold now, against limits.outboundBudget (SPEC 10.6).
    outboundHeldBytes: outbound.used,
    // HTTP calls waiting now (a reply, a trace, the mesh's figures), every API of the node together, against limits.httpMaxWaiting.
    httpWaiting: waitingCount(n).now,
    limits: {
      maxPayload: o.maxPayload,
      maxTopicLength: o.maxTopicLength,
      maxTopicDepth: o.maxTopicDepth,
      maxSubscriptions: o.maxSubscriptions,
      maxNodeSubscriptions: o.maxNodeSubscriptions,
      maxSubscriptionsPerIp: o.maxSubscriptionsPerIp,
      maxConnections: o.maxConnections,
      maxConnectionsPerIp: o.maxConnectionsPerIp,
      maxPending: o.maxPending,
      httpMaxWaiting: ctx.maxWaiting ?? DEFAULT_HTTP_MAX_WAITING,
      inputBudget: o.inputBudget,
      inputStall: o.inputStall,
      outboundBudget: outbound.limit,
      handshakeTimeout: o.handshakeTimeout,
      pingInterval: o.pingInterval,
      maxPingsOut: o.maxPingsOut,
      writeDeadline: o.writeDeadline,
      maxStall: o.maxStall,
      drainTimeout: o.drainTimeout,
    },
  };
}

export interface ClusterNodeView {
  id: string;
  name: string;
  /**
   * Kept as it was for existing readers, and ambiguous: this node's client
   * listener, but a peer's cluster address. Read `clientAddress` /
   * `clusterAddress` instead.
   */
  address: string;
  /** The address clients use to reach that node ('' when not known: a node seen only in a link). */
  clientAddress: string;
  /** The address peers dial to reach that node ('' when not known, or not clustered). */
  clusterAddress: string;
  self: boolean;
  state: 'up' | 'connecting' | 'down';
}

/**
 * GET /v1/cluster: this node, its peers as it sees them, and the links of
 * the mesh (every link when the cluster layer reports them, else this
 * node's own). `nodes` lists every node named by a peer or a link once.
 */
export function clusterView(ctx: ViewContext, localIp?: string) {
  const n = ctx.node;
  const peers: PeerView[] = ctx.cluster?.peers() ?? [];
  const cluster = ctx.cluster?.self?.cluster;
  const self: ClusterNodeView = {
    id: n.id,
    name: n.options.name,
    address: address(n),
    clientAddress: clientAddress(ctx, localIp),
    clusterAddress: cluster ? reachableAddress(cluster, localIp) : '',
    self: true,
    state: n.draining ? 'down' : 'up',
  };
  const nodes = new Map<string, ClusterNodeView>([[n.id, self]]);
  for (const p of peers) {
    if (!nodes.has(p.id)) nodes.set(p.id, { id: p.id, name: p.name ?? '', address: p.address, clientAddress: p.client ?? '', clusterAddress: p.address, self: false, state: p.state });
  }
  const links: LinkView[] = ctx.cluster?.links?.() ?? peers.map((p) => ({ from: n.id, to: p.id, state: p.state, ...(p.rttMs !== undefined ? { rttMs: p.rttMs } : {}) }));
  for (const l of links) {
    for (const id of [l.from, l.to]) {
      if (!nodes.has(id)) nodes.set(id, { id, name: '', address: '', clientAddress: '', clusterAddress: '', self: false, state: l.state });
    }
  }
  return { self: n.id, ready: readiness(ctx).ready, clustered: ctx.cluster !== undefined, nodes: [...nodes.values()], peers, links };
}

export function connectionView(c: ClientSession) {
  return {
    clientId: c.clientId,
    kind: c.transport.kind,
    remote: c.transport.remote,
    name: c.name,
    lang: c.lang,
    open: c.isOpen,
    connectedAt: new Date(c.connectedAt).toISOString(),
    msgsIn: c.msgsIn,
    msgsOut: c.msgsOut,
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
    pending: c.pending,
    dropped: c.dropped,
    congested: c.congested,
    subscriptions: c.subscriptionCount,
  };
}

export const MAX_PAGE = 1000;
/** Entries a page of a list view holds when `limit` is not given. */
export const DEFAULT_PAGE = 100;

/** Parses a non-negative integer query parameter; 400 MB_ERR_INVALID_ARGUMENT when it is not one. */
export function intParam(v: unknown, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined || v === '') return dflt;
  const n = typeof v === 'string' && /^\d{1,10}$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError('MB_ERR_INVALID_ARGUMENT', `${name} must be an integer in ${min}..${max}, got "${String(v)}"`);
  return n;
}

/** GET /v1/connections?offset=&limit= : client connections in arrival order, a page at a time. */
export function connectionsView(node: MeshNode, offset: number, limit: number) {
  const page: ReturnType<typeof connectionView>[] = [];
  let i = 0;
  for (const c of node.connections()) {
    if (i >= offset && page.length < limit) page.push(connectionView(c));
    i++;
  }
  return { total: i, offset, limit, connections: page };
}

/**
 * GET /v1/subscriptions?offset=&limit= : one entry per pattern with how many
 * subscriptions use it (local clients, peers, and the node's internal
 * receivers such as the HTTP inbox), and its queue groups with member
 * counts; most used first, a page at a time (the parameters and bounds of
 * /v1/connections). `total`: subscriptions; `patternsTotal`: patterns, what
 * the pages go through. Before, every pattern and queue group was built into
 * one answer: 100,000 subscriptions made a 56 MB answer, 215-385 MB of RSS
 * and 0.6-0.8 s of blocked event loop per call. Now a first pass counts per
 * pattern only, and the details (owners, queue groups) are built for the
 * page's patterns alone.
 */
export function subscriptionsView(node: MeshNode, offset = 0, limit = DEFAULT_PAGE) {
  const counts = new Map<string, number>();
  node.table.forEach((sub) => void counts.set(sub.pattern, (counts.get(sub.pattern) ?? 0) + 1));
  // Most used first, then by pattern; only the page's entries are put in order (page-select.ts).
  const order = pageOf(counts, counts.size, offset, limit, (a, b) => a[1] > b[1] || (a[1] === b[1] && a[0] < b[0]));
  const page = new Map<string, { pattern: string; count: number; clients: number; peers: number; internal: number; plain: number; queues: Map<string, number> }>();
  for (const [pattern] of order) page.set(pattern, { pattern, count: 0, clients: 0, peers: 0, internal: 0, plain: 0, queues: new Map() });
  if (page.size > 0) {
    node.table.forEach((sub) => {
      const e = page.get(sub.pattern);
      if (!e) return;
      e.count++;
      if (sub.owner.kind === 'client') e.clients++;
      else if (sub.owner.kind !== 'internal') e.peers++;
      else e.internal++;
      if (sub.queue === undefined) e.plain++;
      else e.queues.set(sub.queue, (e.queues.get(sub.queue) ?? 0) + 1);
    });
  }
  const patterns = [...page.values()].map((e) => ({ ...e, queues: [...e.queues].map(([name, members]) => ({ name, members })) }));
  return { total: node.table.size, patternsTotal: counts.size, offset, limit, patterns };
}

/**
 * A slow consumer as the dashboard lists it: its connection view and its
 * state: 'open', 'closing' (closed by the node or the client, still
 * flushing) or 'disconnected' (gone; `disconnectedAt` ISO time, the other
 * fields as last seen).
 */
export type SlowConsumerView = ReturnType<typeof connectionView> & { state: 'open' | 'closing' | 'disconnected'; disconnectedAt?: string };

/** Connections holding queued data or having dropped events, worst first (the dashboard's slow consumers). */
export function slowConsumers(node: MeshNode, limit: number) {
  const out: ReturnType<typeof connectionView>[] = [];
  for (const c of node.connections()) if (c.congested || c.dropped > 0) out.push(connectionView(c));
  return out.sort((a, b) => b.pending - a.pending || b.dropped - a.dropped).slice(0, limit);
}

/**
 * The `n` most published topics that are not internal: topics whose first
 * character is `_` (`_INBOX.…` replies, `_TRACE.…` hop records, any other
 * `_`-reserved name) are the mesh's own traffic, not the application's.
 */
export function topUserTopics(node: MeshNode, n: number): Array<{ topic: string; count: number }> {
  const out: Array<{ topic: string; count: number }> = [];
  // top() sorts the whole bounded counter (capacity entries) anyway: ask for all, keep the first n user topics.
  for (const t of node.topTopics.top(node.topTopics.capacity)) {
    if (t.topic.charCodeAt(0) === 0x5f /* _ */) continue;
    out.push(t);
    if (out.length >= n) break;
  }
  return out;
}

/**
 * Durability as the dashboard shows it. `on`: the node runs a durable store
 * (Redis). `redis`: 'up' while the store's write connection is ready, 'down'
 * while not, 'unknown' when the node does not report it (`stats.store.redisUp`
 * absent) or durability is off. `writesPending`: durable writes sent to Redis
 * and not answered yet (-1: not reported). The counters are the node's
 * (`meshbus_store_*`): refused for backlog, corrupt entries skipped, history
 * pages read, replays refused.
 */
export interface DurabilityView {
  on: boolean;
  redis: 'up' | 'down' | 'unknown';
  writesPending: number;
  refusedBacklog: number;
  corrupt: number;
  replayPages: number;
  replaysRefused: number;
  /** Durable publishes refused by a store quota (MB_ERR_STORE_FULL), all quotas. */
  refusedFull: number;
}

export function durabilityView(node: MeshNode): DurabilityView {
  // redisUp / writesPending are reported by nodes that track them (1 up, 0 down, -1 no durability).
  const store = node.stats.store as MeshNode['stats']['store'] & { redisUp?: number; writesPending?: number };
  const on = node.durability !== undefined;
  const up = store.redisUp;
  return {
    on,
    redis: !on || up === undefined || up < 0 ? 'unknown' : up === 1 ? 'up' : 'down',
    writesPending: typeof store.writesPending === 'number' ? store.writesPending : -1,
    refusedBacklog: node.stats.dropped.storeBacklog,
    corrupt: store.corrupt,
    replayPages: store.replayPages,
    replaysRefused: store.replaysRefused,
    refusedFull: store.full.topics + store.full.delayed + store.full.eventSize + store.full.jobs,
  };
}

/**
 * GET /v1/stats: counters now, the last second's rates, top topics (internal
 * ones left out), slow consumers (with `slow`, also those disconnected in the
 * last minutes, marked `state: 'disconnected'`) and durability.
 */
export function statsView(node: MeshNode, history: RateHistory, slow?: { list(limit: number): SlowConsumerView[] }) {
  const s = node.stats;
  const mem = memoryNow();
  return {
    t: Date.now(),
    connections: node.connectionCount,
    subscriptions: node.table.size,
    counters: { ...s, dropped: { ...s.dropped } },
    rates: history.latest(),
    eventLoopLagMs: { p50: history.lag.p50 * 1000, p99: history.lag.p99 * 1000, max: history.lag.max * 1000 },
    memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal },
    topTopics: topUserTopics(node, 10),
    slowConsumers: slow ? slow.list(10) : slowConsumers(node, 10).map((c): SlowConsumerView => ({ ...c, state: c.open ? 'open' : 'closing' })),
    durability: durabilityView(node),
  };
}

/** GET /v1/stats/history: one sample per interval, oldest first. */
export function historyView(history: RateHistory): { intervalMs: number; samples: readonly RateSample[] } {
  return { intervalMs: history.intervalMs, samples: history.list() };
}

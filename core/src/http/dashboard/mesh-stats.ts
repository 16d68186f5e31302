import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { MeshbusError, hostPort, type Frame } from '@meshbus/proto';
import type { ClusterView } from '../../cluster-view.js';
import type { InternalSubscription } from '../../internal-subscriber.js';
import type { MeshNode } from '../../node.js';
import type { RequestInbox } from '../inbox.js';
import type { RateHistory, RateSample } from '../rate-history.js';
import { durabilityView, readiness, type DurabilityView, type SlowConsumerView, type ViewContext } from '../views.js';
import type { SlowConsumerLog } from './slow-consumers.js';
import { memoryNow } from '../../memory-now.js';

/**
 * The mesh-wide view of the dashboard (GET /v1/mesh): every node's rates,
 * connections, slow consumers and durability on one page.
 *
 * How it gets other nodes' figures: over the mesh itself, not over their
 * HTTP ports. The gossip carries node ids, names and cluster/client
 * addresses but no figures and no HTTP address, so each node's HTTP API
 * answers requests on `_INBOX.<its node id>.dash.stats` (a node-internal
 * subscription, announced to peers like any interest) and the node serving
 * the page asks every other node it knows there, through its request inbox
 * (`_INBOX.<node id>.http.<128-bit token>`), all at once, each bounded by a
 * timeout. No HTTP address to configure, no token to copy between nodes, and
 * a node behind a firewall that only opens its cluster port still shows.
 *
 * Who may read a node's figures this way:
 * - The request topic is under `_INBOX.<node id>`: no client can subscribe
 *   there (a client owns only `_INBOX.<its own client id>`, SPEC 11.1), so
 *   only the addressed node sees a request.
 * - A node answers only when the reply topic is a node's HTTP inbox
 *   (`_INBOX.<id>.http.<32 hex>` with `<id>` this node or a peer it knows):
 *   a client cannot have the answer sent to itself.
 * - A node with an admin token answers only a request that proves the same
 *   token: the payload carries a nonce and HMAC-SHA256(admin token, target
 *   id | nonce). A node whose HTTP API is open (or has another token) cannot
 *   read the figures of a node whose API is protected: it is told
 *   MB_ERR_PERMISSION_DENIED and the page shows that node as such.
 * - At most ANSWERS_PER_SECOND answers (figures or refusals) per node, a
 *   burst of twice that, and requests over 512 bytes are ignored, so forged
 *   requests cannot make a node spend its time answering.
 *
 * A node without the HTTP API has no responder: it shows as
 * MB_ERR_NO_RESPONDERS ("no HTTP API"); a node with no link to this one
 * (partial mesh) likewise, or MB_ERR_TIMEOUT.
 */

/** What one node reports of itself to the mesh-wide view. */
export interface NodeSummary {
  id: string;
  name: string;
  version: string;
  /** host:port of the client listener. */
  address: string;
  uptimeSeconds: number;
  ready: boolean;
  draining: boolean;
  connections: number;
  subscriptions: number;
  /** The last second's rates (per second). */
  rates: RateSample;
  /** Event-loop lag p99 of the last window, ms. */
  lagP99Ms: number;
  /** Resident set size, bytes. */
  rss: number;
  /** At most 10, live first (see SlowConsumerLog). */
  slowConsumers: SlowConsumerView[];
  durability: DurabilityView;
}

/** This node's summary now. */
export function nodeSummary(ctx: ViewContext, history: RateHistory, slow: SlowConsumerLog): NodeSummary {
  const n = ctx.node;
  const r = readiness(ctx);
  return {
    id: n.id,
    name: n.options.name,
    version: ctx.version,
    address: hostPort(n.host, n.port),
    uptimeSeconds: Math.floor((Date.now() - n.startedAt) / 1000),
    ready: r.ready,
    draining: r.draining,
    connections: n.connectionCount,
    subscriptions: n.table.size,
    rates: history.latest(),
    lagP99Ms: history.lag.p99 * 1000,
    rss: memoryNow().rss,
    slowConsumers: slow.list(10),
    durability: durabilityView(n),
  };
}

/** One node of GET /v1/mesh: its summary, or why there is none. */
export interface MeshNodeEntry {
  id: string;
  name: string;
  self: boolean;
  summary?: NodeSummary;
  error?: { code: string; message: string };
}

/** Wait for each node's answer, ms. */
export const MESH_TIMEOUT_MS = 1500;
/** Most nodes asked per view. */
export const MAX_MESH_NODES = 64;
export const ANSWERS_PER_SECOND = 20;

const MAX_REQUEST = 512;
const REPLY = /^_INBOX\.([0-9a-f]{16})\.http\.[0-9a-f]{32}$/;
const NONCE = /^[0-9a-f]{32}$/;
const HEX_MAC = /^[0-9a-f]{64}$/;

/** The topic node `id` answers summary requests on. */
export function statsTopic(id: string): string {
  return `_INBOX.${id}.dash.stats`;
}

function proof(token: string, target: string, nonce: string): string {
  return createHmac('sha256', token).update(`meshbus-dashboard|${target}|${nonce}`).digest('hex');
}

export interface MeshStatsOptions {
  node: MeshNode;
  /** The cluster view at call time (it can be attached after start). */
  cluster(): ClusterView | undefined;
  /** This node's summary now. */
  summary(): NodeSummary;
  inbox: RequestInbox;
  adminToken: string | undefined;
}

/** Answers other nodes' summary requests and collects every node's summary (see the module comment). */
export class MeshStats {
  private sub: InternalSubscription | undefined;
  private tokens = ANSWERS_PER_SECOND * 2;
  private refilled = Date.now();

  constructor(private readonly o: MeshStatsOptions) {}

  /** Subscribes the responder. */
  start(): void {
    this.sub ??= this.o.node.subscribeInternal(statsTopic(this.o.node.id), this.answer, { label: 'dashboard stats' });
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  /** This node and every node the cluster view names (at most MAX_MESH_NODES), each asked once with a MESH_TIMEOUT_MS bound. */
  async collect(timeoutMs = MESH_TIMEOUT_MS, signal?: AbortSignal): Promise<{ self: string; nodes: MeshNodeEntry[] }> {
    const { node } = this.o;
    const others = new Map<string, string>();
    const cluster = this.o.cluster();
    for (const p of cluster?.peers() ?? []) if (p.id !== node.id) others.set(p.id, p.name ?? '');
    for (const l of cluster?.links?.() ?? []) for (const id of [l.from, l.to]) if (id !== node.id && !others.has(id)) others.set(id, '');
    const self: MeshNodeEntry = { id: node.id, name: node.options.name, self: true, summary: this.o.summary() };
    const asked = [...others].sort((a, b) => (a[0] < b[0] ? -1 : 1)).slice(0, MAX_MESH_NODES - 1);
    // `signal`: the caller went; every question still open is given up at once (the inbox forgets it).
    const rest = await Promise.all(asked.map(([id, name]) => this.ask(id, name, timeoutMs, signal)));
    return { self: node.id, nodes: [self, ...rest] };
  }

  private async ask(id: string, name: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<MeshNodeEntry> {
    const nonce = randomBytes(16).toString('hex');
    const body: Record<string, string> = { nonce };
    if (this.o.adminToken !== undefined) body.proof = proof(this.o.adminToken, id, nonce);
    try {
      const r = await this.o.inbox.request(statsTopic(id), Buffer.from(JSON.stringify(body)), undefined, timeoutMs, signal);
      const answer = parseAnswer(r.payload, id);
      if ('error' in answer) return { id, name, self: false, error: answer.error };
      return { id, name: answer.summary.name || name, self: false, summary: answer.summary };
    } catch (e) {
      const code = e instanceof MeshbusError ? e.code : 'MB_ERR_INTERNAL';
      return { id, name, self: false, error: { code, message: e instanceof Error ? e.message : String(e) } };
    }
  }

  /** A summary request from another node (or anyone who published on our stats topic). */
  private readonly answer = (f: Frame): void => {
    // A request is a nonce and a MAC: a few hundred bytes at most.
    if (f.payloadLen > MAX_REQUEST) return;
    let reply: string | undefined;
    let req: unknown;
    try {
      reply = f.ext?.reply;
      req = JSON.parse(Buffer.from(f.payload).toString('utf8'));
    } catch {
      return;
    }
    const m = reply === undefined ? null : REPLY.exec(reply);
    if (!m || !this.knownNode(m[1]!) || typeof req !== 'object' || req === null) return;
    const { nonce, proof: mac } = req as { nonce?: unknown; proof?: unknown };
    if (typeof nonce !== 'string' || !NONCE.test(nonce) || !this.take()) return;
    let out: unknown;
    const token = this.o.adminToken;
    if (token !== undefined && !(typeof mac === 'string' && HEX_MAC.test(mac) && timingSafeEqual(Buffer.from(mac), Buffer.from(proof(token, this.o.node.id, nonce))))) {
      out = { error: { code: 'MB_ERR_PERMISSION_DENIED', message: "this node's admin token differs from the asking node's" } };
    } else {
      out = { summary: this.o.summary() };
    }
    try {
      this.o.node.publishLocal(reply!, Buffer.from(JSON.stringify(out)), { correlation: f.correlation, from: this.sub?.subscriber });
    } catch (e) {
      // A summary over maxPayload or a node closing: the asker times out and shows why it waited.
      this.o.node.logger.debug({ err: String(e) }, 'dashboard stats answer not sent');
    }
  };

  private knownNode(id: string): boolean {
    if (id === this.o.node.id) return true;
    return this.o.cluster()?.peers().some((p) => p.id === id) ?? false;
  }

  private take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(ANSWERS_PER_SECOND * 2, this.tokens + ((now - this.refilled) / 1000) * ANSWERS_PER_SECOND);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}

/** Checks another node's answer: its summary (for node `id`) or its error; anything else is MB_ERR_BAD_PEER_INFO. */
function parseAnswer(payload: Uint8Array, id: string): { summary: NodeSummary } | { error: { code: string; message: string } } {
  const bad = { error: { code: 'MB_ERR_BAD_PEER_INFO', message: 'the node answered something that is not a summary' } };
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return bad;
  }
  if (typeof v !== 'object' || v === null) return bad;
  const o = v as { summary?: unknown; error?: unknown };
  if (typeof o.error === 'object' && o.error !== null) {
    const e = o.error as { code?: unknown; message?: unknown };
    if (typeof e.code === 'string' && typeof e.message === 'string') return { error: { code: e.code.slice(0, 64), message: e.message.slice(0, 256) } };
    return bad;
  }
  const s = o.summary as Partial<NodeSummary> | undefined;
  // The page sets every value as text; here only the shape it reads is checked.
  if (typeof s !== 'object' || s === null || s.id !== id || typeof s.name !== 'string' || typeof s.connections !== 'number' || typeof s.rates !== 'object' || !Array.isArray(s.slowConsumers) || typeof s.durability !== 'object') return bad;
  return { summary: s as NodeSummary };
}

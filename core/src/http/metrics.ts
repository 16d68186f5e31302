import type { ClusterView, LinkState } from '../cluster-view.js';
import type { MeshNode } from '../node.js';
import type { RateHistory } from './rate-history.js';
import type { DroppedReplies } from './inbox.js';

/**
 * GET /metrics in the Prometheus text exposition format (version 0.0.4),
 * written directly: a few dozen series need no client library, and the node
 * keeps its counters in plain fields that are read at scrape time, so the
 * publish path never touches a metrics object.
 */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Counters of the HTTP API itself. */
export interface HttpStats {
  published: number;
  requests: { ok: number; timeout: number; noResponders: number; failed: number };
  /** Messages on the HTTP inbox that answered no request in flight (forged, late or malformed). */
  repliesDropped: DroppedReplies;
}

export function newHttpStats(): HttpStats {
  return { published: 0, requests: { ok: 0, timeout: 0, noResponders: 0, failed: 0 }, repliesDropped: { unknownToken: 0, badCorrelation: 0, malformed: 0 } };
}

export interface MetricsSource {
  node: MeshNode;
  cluster: ClusterView | undefined;
  history: RateHistory;
  http: HttpStats;
  version: string;
}

type Labels = Record<string, string>;
type Sample = [Labels | undefined, number];

const escLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const escHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const num = (v: number): string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

/** Builds one exposition: each family once, with HELP and TYPE before its samples. */
class Exposition {
  private readonly lines: string[] = [];

  add(name: string, type: 'counter' | 'gauge', help: string, samples: Sample[] | number): void {
    this.lines.push(`# HELP ${name} ${escHelp(help)}`, `# TYPE ${name} ${type}`);
    const list: Sample[] = typeof samples === 'number' ? [[undefined, samples]] : samples;
    for (const [labels, v] of list) {
      const l = labels && Object.keys(labels).length > 0
        ? `{${Object.entries(labels).map(([k, x]) => `${k}="${escLabel(x)}"`).join(',')}}`
        : '';
      this.lines.push(`${name}${l} ${num(v)}`);
    }
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

const STATES: readonly LinkState[] = ['connecting', 'up', 'down'];

export function renderMetrics(src: MetricsSource): string {
  const { node, cluster, history, http } = src;
  const s = node.stats;
  const m = new Exposition();

  const byKind = { tcp: 0, ws: 0 };
  let pending = 0;
  for (const c of node.connections()) {
    byKind[c.transport.kind]++;
    pending += c.pending;
  }
  const peers = cluster?.peers() ?? [];
  const peersUp = peers.filter((p) => p.state === 'up').length;
  const subs = { client: 0, peer: 0, internal: 0 };
  node.table.forEach((sub) => subs[sub.owner.kind]++);

  m.add('meshbus_info', 'gauge', 'Node identity; always 1.', [
    [{ id: node.id, name: node.options.name, version: src.version, scanner: node.scanner.name }, 1],
  ]);
  m.add('meshbus_up', 'gauge', '1 while the node accepts connections, 0 while draining.', node.draining ? 0 : 1);
  m.add('meshbus_ready', 'gauge', '1 when the node is ready (listening and, in a cluster, joined).', !node.draining && node.port > 0 && (cluster?.ready() ?? true) ? 1 : 0);
  m.add('meshbus_uptime_seconds', 'gauge', 'Seconds since the node started.', (Date.now() - node.startedAt) / 1000);
  m.add('meshbus_connections', 'gauge', 'Open connections by kind: client TCP, client WebSocket, peer links up.', [
    [{ kind: 'tcp' }, byKind.tcp],
    [{ kind: 'ws' }, byKind.ws],
    [{ kind: 'peer' }, peersUp],
  ]);
  m.add('meshbus_connections_total', 'counter', 'Client connections accepted since start.', s.connectionsTotal);
  m.add('meshbus_connections_refused_total', 'counter', 'Client connections refused (limit reached or draining).', s.connectionsRefused);
  m.add('meshbus_subscriptions', 'gauge', 'Subscriptions in the routing table by owner: local clients, peers, or the node itself (internal: HTTP inbox, traces).', [
    [{ owner: 'client' }, subs.client],
    [{ owner: 'peer' }, subs.peer],
    [{ owner: 'internal' }, subs.internal],
  ]);
  m.add('meshbus_messages_in_total', 'counter', 'Events accepted for routing (from clients and the HTTP API).', s.msgsIn);
  m.add('meshbus_messages_out_total', 'counter', 'Events handed to receivers (clients and peer links).', s.msgsOut);
  m.add('meshbus_bytes_in_total', 'counter', 'Bytes of events accepted for routing, frames whole.', s.bytesIn);
  m.add('meshbus_bytes_out_total', 'counter', 'Bytes of events handed to receivers, frames whole.', s.bytesOut);
  m.add('meshbus_pending_bytes', 'gauge', 'Bytes queued toward clients and not yet written.', pending);
  m.add('meshbus_slow_consumers_total', 'counter', 'Connections closed as slow consumers.', s.slowConsumers);
  m.add('meshbus_flow_pauses_total', 'counter', 'Times a publisher was paused until a receiver drained below its high-water mark.', s.flowPauses);
  m.add('meshbus_flow_stalls_total', 'counter', 'Times a paused publisher gave up after maxStall.', s.flowStalls);
  m.add('meshbus_dropped_total', 'counter', 'Events not delivered, by reason: dropped from a slow consumer queue, refused for a store backlog, a queue-group event whose members here had all ended, or accepted with no receiver.', [
    [{ reason: 'slow_consumer' }, s.dropped.slow],
    [{ reason: 'store_backlog' }, s.dropped.storeBacklog],
    [{ reason: 'no_queue_member' }, s.dropped.noQueueMember],
    [{ reason: 'no_interest' }, s.noInterest],
  ]);
  m.add('meshbus_store_corrupt_entries_total', 'counter', 'Entries read back from Redis that could not be decoded: skipped, the subscriber told (ERROR 4010).', s.store.corrupt);
  m.add('meshbus_store_replay_pages_total', 'counter', 'History pages read from Redis for SUB since (recovery).', s.store.replayPages);
  m.add('meshbus_store_replays_refused_total', 'counter', 'SUB since refused by the per-connection or per-node replay bound (MB_ERR_TOO_MANY_REPLAYS).', s.store.replaysRefused);
  m.add('meshbus_protocol_errors_total', 'counter', 'Malformed frames or byte streams received from clients.', s.protocolErrors);
  m.add('meshbus_errors_sent_total', 'counter', 'ERROR frames sent to clients.', s.errorsSent);
  m.add('meshbus_auth_failures_total', 'counter', 'Client handshakes refused for a bad token.', s.authFailures);
  m.add('meshbus_permission_denied_total', 'counter', 'Publishes and subscriptions refused by token permissions.', s.permissionDenied);
  m.add('meshbus_rate_limited_total', 'counter', 'Publishes dropped by the per-connection rate limit.', s.rateLimited);
  m.add('meshbus_tokens_expired_total', 'counter', 'Live connections closed because their token expired.', s.tokensExpired);
  m.add('meshbus_stale_connections_total', 'counter', 'Connections closed for unanswered pings.', s.staleConnections);
  m.add('meshbus_http_published_total', 'counter', 'Events published through POST /v1/publish.', http.published);
  m.add('meshbus_http_requests_total', 'counter', 'Requests made through POST /v1/request, by outcome.', [
    [{ outcome: 'ok' }, http.requests.ok],
    [{ outcome: 'timeout' }, http.requests.timeout],
    [{ outcome: 'no_responders' }, http.requests.noResponders],
    [{ outcome: 'failed' }, http.requests.failed],
  ]);
  m.add('meshbus_http_replies_dropped_total', 'counter', 'Messages on the POST /v1/request inbox refused as answers, by reason.', [
    [{ reason: 'unknown_token' }, http.repliesDropped.unknownToken],
    [{ reason: 'bad_correlation' }, http.repliesDropped.badCorrelation],
    [{ reason: 'malformed' }, http.repliesDropped.malformed],
  ]);

  m.add('meshbus_peers', 'gauge', 'Peer links by state.', STATES.map((st) => [{ state: st }, peers.filter((p) => p.state === st).length]));
  m.add(
    'meshbus_peer_up',
    'gauge',
    'Per peer: 1 when the link is up, else 0.',
    peers.map((p) => [{ peer: p.id, name: p.name ?? '', address: p.address, state: p.state }, p.state === 'up' ? 1 : 0]),
  );
  m.add(
    'meshbus_peer_rtt_seconds',
    'gauge',
    'Per peer: last measured round-trip time of the link.',
    peers.filter((p) => p.rttMs !== undefined).map((p) => [{ peer: p.id }, p.rttMs! / 1000]),
  );
  m.add('meshbus_peer_messages_in_total', 'counter', 'Per peer: events received from the peer.', peers.map((p) => [{ peer: p.id }, p.msgsIn]));
  m.add('meshbus_peer_messages_out_total', 'counter', 'Per peer: events sent to the peer.', peers.map((p) => [{ peer: p.id }, p.msgsOut]));

  const lag = history.lag;
  m.add('meshbus_event_loop_lag_seconds', 'gauge', 'Event-loop delay over the last sampling window (perf_hooks monitorEventLoopDelay).', [
    [{ stat: 'p50' }, lag.p50],
    [{ stat: 'p99' }, lag.p99],
    [{ stat: 'max' }, lag.max],
    [{ stat: 'mean' }, lag.mean],
  ]);
  const mem = process.memoryUsage();
  m.add('meshbus_memory_bytes', 'gauge', 'Process memory by kind (process.memoryUsage).', [
    [{ kind: 'rss' }, mem.rss],
    [{ kind: 'heap_used' }, mem.heapUsed],
    [{ kind: 'heap_total' }, mem.heapTotal],
    [{ kind: 'external' }, mem.external],
    [{ kind: 'array_buffers' }, mem.arrayBuffers],
  ]);
  return m.toString();
}

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { ClusterView, LinkState } from '../cluster-view.js';
import type { MeshNode } from '../node.js';
import type { HttpStats } from './metrics.js';
import type { RateHistory } from './rate-history.js';
import { memoryNow } from '../memory-now.js';
import { outboundBudgetOf } from '../outbound-budget.js';
import { replyMemory } from './reply-memory.js';
import { DEFAULT_HTTP_MAX_WAITING } from './http-options.js';
import { waitingCount } from './waiting-calls.js';

/**
 * The node's series in a prom-client Registry of its own: prom-client's
 * default `process_*` and `nodejs_*` metrics, and the `meshbus_*` series.
 * The node keeps its counters in plain fields (the publish path touches no
 * metrics object); each family here reads them in its `collect()`, at scrape
 * time. Durations are prom-client Histograms put into the node's
 * `timings` (delivery, durable writes) and the HTTP stats (request round
 * trip). This module imports prom-client, so it is loaded by the HTTP
 * plugin's registration, never by importing `@meshbus/core`.
 *
 * Rules kept (checked by `promtool check metrics` in the tests): each family
 * once; counters end in `_total` and no gauge is named like a counter's
 * family (OpenMetrics drops `_total`); no label whose value changes during a
 * series's life.
 */
export interface NodeMetricsSource {
  node: MeshNode;
  /** Read at each scrape: the view can be attached after registration. */
  cluster: () => ClusterView | undefined;
  history: RateHistory;
  http: HttpStats;
  version: string;
  /** The API's maxWaiting (meshbus_http_waiting_calls_limit). */
  maxWaiting?: number;
}

type Labels = Record<string, string>;
type Samples = number | Array<[Labels, number]>;

/** Histogram buckets of sub-millisecond to second durations (delivery through the node, seconds). */
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Histogram buckets of round trips to Redis or through the mesh, seconds. */
const ROUND_TRIP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function labelNames(read: () => Samples): string[] {
  const v = read();
  return typeof v === 'number' ? [] : Object.keys(v[0]?.[0] ?? {});
}

/** A gauge whose samples are read at scrape time. `names`: its label names when `read` may return no sample. */
function gauge(registry: Registry, name: string, help: string, read: () => Samples, names?: string[]): void {
  new Gauge({
    name,
    help,
    labelNames: names ?? labelNames(read),
    registers: [registry],
    collect() {
      this.reset();
      const v = read();
      if (typeof v === 'number') this.set(v);
      else for (const [l, x] of v) this.set(l, x);
    },
  });
}

/** A counter whose value is read at scrape time from a field only ever incremented. */
function counter(registry: Registry, name: string, help: string, read: () => Samples, names?: string[]): void {
  new Counter({
    name,
    help,
    labelNames: names ?? labelNames(read),
    registers: [registry],
    collect() {
      this.reset();
      const v = read();
      if (typeof v === 'number') this.inc(v);
      else for (const [l, x] of v) this.inc(l, x);
    },
  });
}

/**
 * Event-loop delay as a summary: quantiles over the last sampling window
 * (RateHistory's monitorEventLoopDelay, one second), `_sum` and `_count`
 * since start. prom-client's Summary computes quantiles from its own
 * observations; this one reports those perf_hooks already computed, so it
 * is a metric object of prom-client's shape (name, help, type, get()).
 */
function lagSummary(registry: Registry, history: RateHistory): void {
  const name = 'meshbus_event_loop_lag_seconds';
  const metric = {
    name,
    help: 'Event-loop delay (perf_hooks monitorEventLoopDelay): quantiles over the last 1-second window; sum and count since start.',
    type: 'summary',
    aggregator: 'sum',
    get() {
      const l = history.lag;
      const t = history.lagTotals;
      return {
        name,
        help: this.help,
        type: 'summary',
        aggregator: 'sum',
        values: [
          { labels: { quantile: 0.5 }, value: l.p50 },
          { labels: { quantile: 0.99 }, value: l.p99 },
          { labels: { quantile: 1 }, value: l.max },
          { metricName: `${name}_sum`, labels: {}, value: t.sumSeconds },
          { metricName: `${name}_count`, labels: {}, value: t.count },
        ],
      };
    },
    reset() {},
  };
  registry.registerMetric(metric as unknown as Metric);
}

const STATES: readonly LinkState[] = ['connecting', 'up', 'down'];

/**
 * A registry holding the node's series; sets the node's and the HTTP stats'
 * duration observers. `detach()` (when the HTTP app closes) puts the node's
 * no-op observers back if they are still this registry's.
 */
export function createNodeMetrics(src: NodeMetricsSource): { registry: Registry; detach(): void } {
  const { node, history, http } = src;
  const s = node.stats;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client's nodejs_active_{handles,requests,resources}_total are gauges with a counter's
  // suffix (promtool refuses them); each is the sum of the same family by type, which stays.
  for (const k of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`nodejs_active_${k}_total`);
  const peers = () => src.cluster()?.peers() ?? [];

  gauge(registry, 'meshbus_info', 'Node identity; always 1.', () => [[{ id: node.id, name: node.options.name, version: src.version, scanner: node.scanner.name }, 1]]);
  gauge(registry, 'meshbus_up', '1 while the node accepts connections, 0 while draining.', () => (node.draining ? 0 : 1));
  gauge(registry, 'meshbus_ready', '1 when the node is ready (listening and, in a cluster, joined).', () =>
    !node.draining && node.port > 0 && (src.cluster()?.ready() ?? true) ? 1 : 0,
  );
  gauge(registry, 'meshbus_uptime_seconds', 'Seconds since the node started.', () => (Date.now() - node.startedAt) / 1000);
  gauge(registry, 'meshbus_connections', 'Open connections by kind: client TCP, client WebSocket, peer links up.', () => {
    const byKind = { tcp: 0, ws: 0 };
    for (const c of node.connections()) byKind[c.transport.kind]++;
    return [
      [{ kind: 'tcp' }, byKind.tcp],
      [{ kind: 'ws' }, byKind.ws],
      [{ kind: 'peer' }, peers().filter((p) => p.state === 'up').length],
    ];
  });
  gauge(registry, 'meshbus_subscription_weight', 'Weight of the subscriptions in the routing table by owner (SPEC 10.10: what the subscription limits count; a short subscription weighs 1, one of 32 tokens 6).', () => {
    const w = node.table.weightByOwner();
    return (['client', 'peer', 'leaf', 'gateway', 'internal'] as const).map((owner) => [{ owner }, w[owner]]);
  });
  counter(registry, 'meshbus_connections_accepted_total', 'Client connections accepted since start.', () => s.connectionsTotal);
  counter(registry, 'meshbus_connections_refused_total', 'Client connections refused (limit reached or draining).', () => s.connectionsRefused);
  gauge(registry, 'meshbus_subscriptions', 'Subscriptions in the routing table by owner: local clients, peers, leaf nodes (on their hub), gateway links (other regions), or the node itself (internal: HTTP inbox, traces).', () => {
    // Counted by the table as subscriptions come and go: a scrape walks none of them.
    const subs = node.table.byOwner();
    return [
      [{ owner: 'client' }, subs.client],
      [{ owner: 'peer' }, subs.peer],
      [{ owner: 'leaf' }, subs.leaf],
      [{ owner: 'gateway' }, subs.gateway],
      [{ owner: 'internal' }, subs.internal],
    ];
  });
  counter(registry, 'meshbus_messages_in_total', 'Events accepted for routing (from clients, peers and the HTTP API).', () => s.msgsIn);
  counter(registry, 'meshbus_messages_out_total', 'Events handed to receivers (clients and peer links).', () => s.msgsOut);
  counter(registry, 'meshbus_bytes_in_total', 'Bytes of events accepted for routing, frames whole.', () => s.bytesIn);
  counter(registry, 'meshbus_bytes_out_total', 'Bytes of events handed to receivers, frames whole.', () => s.bytesOut);
  gauge(registry, 'meshbus_pending_bytes', 'Bytes queued toward client connections and not yet written, with what the node buffers for them (live events waiting for a replay); peer links: meshbus_peer_pending_bytes.', () => {
    let pending = 0;
    for (const c of node.connections()) pending += c.pending;
    return pending;
  });
  counter(registry, 'meshbus_slow_consumers_total', 'Connections closed as slow consumers.', () => s.slowConsumers);
  counter(registry, 'meshbus_flow_pauses_total', 'Times a publisher was paused until a receiver drained below its high-water mark.', () => s.flowPauses);
  counter(registry, 'meshbus_flow_stalls_total', 'Times a paused publisher gave up after maxStall.', () => s.flowStalls);
  counter(registry, 'meshbus_dropped_total', 'Events not delivered, each once, by reason: dropped from a slow consumer queue or still queued when it closed, the same for a peer link, not sent over a link past the event\'s maxHops, from a peer and older than its origin\'s last delivered, refused for the durable write backlog, a queue-group event whose members here had all ended, not sent to a peer whose maxPayload is smaller (one per link), from a peer and over this node\'s maxPayload, or accepted with no receiver.', () => [
    [{ reason: 'slow_consumer' }, s.dropped.slow],
    [{ reason: 'slow_peer' }, s.dropped.slowPeer],
    [{ reason: 'max_hops' }, s.dropped.maxHops],
    [{ reason: 'out_of_order' }, s.dropped.outOfOrder],
    [{ reason: 'store_backlog' }, s.dropped.storeBacklog],
    [{ reason: 'no_queue_member' }, s.dropped.noQueueMember],
    [{ reason: 'too_large_for_peer' }, s.dropped.tooLargeForPeer],
    [{ reason: 'too_large_from_peer' }, s.dropped.tooLargeFromPeer],
    [{ reason: 'no_interest' }, s.noInterest],
  ]);
  counter(registry, 'meshbus_store_corrupt_entries_total', 'Entries read back from Redis that could not be decoded: skipped, the subscriber told (ERROR 4010).', () => s.store.corrupt);
  counter(registry, 'meshbus_store_replay_pages_total', 'History pages read from Redis for SUB since (recovery).', () => s.store.replayPages);
  counter(registry, 'meshbus_store_replays_refused_total', 'SUB since refused by the per-connection or per-node replay bound (MB_ERR_TOO_MANY_REPLAYS).', () => s.store.replaysRefused);
  counter(registry, 'meshbus_store_full_total', 'Durable publishes refused by a store quota (MB_ERR_STORE_FULL, not stored, not delivered), by quota: a new topic past its rule\'s maxTopics, delayed publishes past the mesh bound, a payload past maxEventBytes.', () => [
    [{ quota: 'topics' }, s.store.full.topics],
    [{ quota: 'delayed' }, s.store.full.delayed],
    [{ quota: 'event_size' }, s.store.full.eventSize],
    [{ quota: 'jobs' }, s.store.full.jobs],
  ]);
  counter(registry, 'meshbus_store_dead_letters_total', 'Jobs given up after their attempts and kept as dead letters, by kind: a work queue\'s job (also on _DLQ.<group>), a delayed publish.', () => [
    [{ kind: 'queue' }, s.store.deadLetters.queue],
    [{ kind: 'delayed' }, s.store.deadLetters.delayed],
  ]);
  if (node.durability !== undefined) {
    // Only on a node with durability (loaded by listen(), before the HTTP API starts): a health
    // gauge of a Redis it does not use would read as down.
    gauge(registry, 'meshbus_store_redis_up', 'Durability: 1 while the write connection to Redis is ready, else 0.', () => Math.max(0, s.store.redisUp));
    gauge(registry, 'meshbus_store_writes_pending', 'Durable writes sent to Redis and not answered yet.', () => s.store.writesPending);
  }
  counter(registry, 'meshbus_protocol_errors_total', 'Malformed frames or byte streams received from clients.', () => s.protocolErrors);
  counter(registry, 'meshbus_errors_sent_total', 'ERROR frames sent to clients.', () => s.errorsSent);
  counter(registry, 'meshbus_auth_failures_total', 'Client handshakes refused for a bad token.', () => s.authFailures);
  const paths = ['client', 'peer', 'http'] as const;
  counter(registry, 'meshbus_auth_failed_attempts_total', 'Refused secrets charged to their address by the failed-auth limiter, by path: client token (TCP and WebSocket), peer cluster secret, HTTP admin token.', () => paths.map((p) => [{ path: p }, node.authThrottle.failures[p]]));
  counter(registry, 'meshbus_auth_throttled_total', 'Authentications refused unchecked (MB_ERR_AUTH_THROTTLED) because their address had no failed attempts left, by path.', () => paths.map((p) => [{ path: p }, node.authThrottle.refused[p]]));
  gauge(registry, 'meshbus_auth_throttle_addresses', 'Remote addresses the failed-auth limiter remembers (bounded by its maxAddresses).', () => node.authThrottle.size);
  counter(registry, 'meshbus_permission_denied_total', 'Publishes and subscriptions refused by token permissions.', () => s.permissionDenied);
  const ib = node.inputBudget;
  gauge(registry, 'meshbus_input_budget_bytes', 'The node-wide input budget (inputBudget, SPEC 9.5): bytes of unfinished frames, WebSocket messages and HTTP bodies the node holds at most (plus one read per input paused, and one frame, message or body when every holder waits; SPEC 9.5).', () => ib.limit);
  gauge(registry, 'meshbus_input_held_bytes', 'Bytes of unfinished frames, WebSocket messages and HTTP bodies held now, every input together.', () => ib.used);
  gauge(registry, 'meshbus_input_waiting', 'Inputs (connections, HTTP requests) paused now until the input budget frees.', () => ib.waitingCount);
  counter(registry, 'meshbus_input_budget_waits_total', 'Times an input was paused because the input budget was full.', () => ib.waits);
  counter(registry, 'meshbus_input_budget_closed_total', 'Inputs closed with MB_ERR_INPUT_BUDGET: holders that sent less than 64 KiB over inputStall (time paused by the budget counting a third) while others waited for the budget.', () => ib.evictions);
  const ob = outboundBudgetOf(ib, node.options.outboundBudget);
  gauge(registry, 'meshbus_outbound_budget_bytes', 'The node-wide outbound budget (outboundBudget, SPEC 10.6): bytes all outbound queues (client connections and peer links) hold at most, backlogs and wires together.', () => ob.limit);
  gauge(registry, 'meshbus_outbound_held_bytes', 'Bytes the outbound queues hold now, counted against the outbound budget (a backlog\'s shared copies once per queue: an over-count; meshbus_pending_bytes and meshbus_peer_pending_bytes split it by side).', () => ob.used);
  counter(registry, 'meshbus_outbound_budget_sheds_total', 'Times the connection holding the most was made to shed by the outbound budget (its drop events dropped, or closed as a slow consumer).', () => ob.sheds);
  const hr = s.httpReplies;
  gauge(registry, 'meshbus_http_reply_held_bytes', 'Bytes of HTTP API answers (request replies, views) handed to the server and not written out yet, every connection together (client connections: meshbus_pending_bytes).', () => hr.heldBytes);
  gauge(registry, 'meshbus_http_reply_limit_bytes', 'The node-wide bound on meshbus_http_reply_held_bytes (the node\'s inputBudget): an answer past it is refused 503 MB_ERR_SLOW_CONSUMER.', () => replyMemory(node).limit);
  counter(registry, 'meshbus_http_replies_refused_total', 'HTTP answers refused 503 MB_ERR_SLOW_CONSUMER because they would pass the node-wide bound or their connection\'s maxPending.', () => hr.refused);
  const waits = waitingCount(node);
  gauge(registry, 'meshbus_http_waiting_calls', 'HTTP calls waiting now (POST /v1/request for its reply, /v1/trace for its wait, GET /v1/mesh and /v1/workers for their figures), every HTTP API of the node together; a call whose caller goes is given up at once.', () => waits.now);
  gauge(registry, 'meshbus_http_waiting_calls_limit', 'This API\'s bound on meshbus_http_waiting_calls (maxWaiting): a call past it is refused 503 MB_ERR_TOO_MANY_CONNECTIONS.', () => src.maxWaiting ?? DEFAULT_HTTP_MAX_WAITING);
  counter(registry, 'meshbus_http_waiting_refused_total', 'HTTP calls that wait refused 503 MB_ERR_TOO_MANY_CONNECTIONS because maxWaiting calls were waiting on the node.', () => waits.refused);
  counter(registry, 'meshbus_http_connections_cut_total', 'HTTP connections destroyed because their socket took nothing for writeDeadline while answer bytes waited.', () => hr.cut);
  counter(registry, 'meshbus_rate_limited_total', 'Publishes dropped by the per-connection rate limit.', () => s.rateLimited);
  counter(registry, 'meshbus_subscriptions_refused_total', 'SUBs refused MB_ERR_TOO_MANY_SUBSCRIPTIONS, by the bound they hit: connection (maxSubscriptions), node (maxNodeSubscriptions), host (maxSubscriptionsPerIp).', () =>
    (['connection', 'node', 'host'] as const).map((b) => [{ bound: b }, s.subscriptionsRefused[b]]),
  );
  counter(registry, 'meshbus_tokens_expired_total', 'Live connections closed because their token expired.', () => s.tokensExpired);
  counter(registry, 'meshbus_stale_connections_total', 'Connections closed for unanswered pings.', () => s.staleConnections);
  counter(registry, 'meshbus_trace_hops_total', 'Trace hop records this node published.', () => s.traceHops);
  counter(registry, 'meshbus_http_published_total', 'Events published through POST /v1/publish.', () => http.published);
  counter(registry, 'meshbus_http_requests_total', 'Requests made through POST /v1/request, by outcome (abandoned: the caller went before the reply came).', () => [
    [{ outcome: 'ok' }, http.requests.ok],
    [{ outcome: 'timeout' }, http.requests.timeout],
    [{ outcome: 'no_responders' }, http.requests.noResponders],
    [{ outcome: 'failed' }, http.requests.failed],
    [{ outcome: 'abandoned' }, http.requests.abandoned],
  ]);
  counter(registry, 'meshbus_http_replies_dropped_total', 'Messages on the POST /v1/request inbox refused as answers, by reason.', () => [
    [{ reason: 'unknown_token' }, http.repliesDropped.unknownToken],
    [{ reason: 'bad_correlation' }, http.repliesDropped.badCorrelation],
    [{ reason: 'malformed' }, http.repliesDropped.malformed],
  ]);

  gauge(registry, 'meshbus_peers', 'Peer links by state.', () => STATES.map((st) => [{ state: st }, peers().filter((p) => p.state === st).length]));
  // No `state` label: a label whose value changes makes a new series each time the link goes up or down.
  gauge(registry, 'meshbus_peer_up', 'Per peer: 1 when the link is up, else 0.', () => peers().map((p) => [{ peer: p.id, name: p.name ?? '', address: p.address }, p.state === 'up' ? 1 : 0]), ['peer', 'name', 'address']);
  gauge(registry, 'meshbus_peer_rtt_seconds', 'Per peer: last measured round-trip time of the link.', () =>
    peers().filter((p) => p.rttMs !== undefined).map((p) => [{ peer: p.id }, p.rttMs! / 1000]), ['peer'],
  );
  gauge(registry, 'meshbus_peer_pending_bytes', 'Per peer (peer, leaf or gateway link): bytes queued toward it and not yet written (meshbus_pending_bytes counts client connections).', () =>
    peers().filter((p) => p.pending !== undefined).map((p) => [{ peer: p.id }, p.pending!]), ['peer'],
  );
  counter(registry, 'meshbus_peer_messages_in_total', 'Per peer: events received from the peer.', () => peers().map((p) => [{ peer: p.id }, p.msgsIn]), ['peer']);
  counter(registry, 'meshbus_peer_messages_out_total', 'Per peer: events sent to the peer.', () => peers().map((p) => [{ peer: p.id }, p.msgsOut]), ['peer']);

  lagSummary(registry, history);
  gauge(registry, 'meshbus_memory_bytes', 'Process memory by kind (process.memoryUsage).', () => {
    const mem = memoryNow();
    return [
      [{ kind: 'rss' }, mem.rss],
      [{ kind: 'heap_used' }, mem.heapUsed],
      [{ kind: 'heap_total' }, mem.heapTotal],
      [{ kind: 'external' }, mem.external],
      [{ kind: 'array_buffers' }, mem.arrayBuffers],
    ];
  });

  const idle = { delivery: node.timings.delivery, durableWrite: node.timings.durableWrite };
  node.timings.delivery = new Histogram({
    name: 'meshbus_delivery_seconds',
    help: 'Through the node, one event in 16: from routing an event (client, HTTP or peer) to the end of the event-loop turn that wrote it to the receivers. Durable events: see meshbus_store_write_seconds.',
    buckets: FAST_BUCKETS,
    registers: [registry],
  });
  node.timings.durableWrite = new Histogram({
    name: 'meshbus_store_write_seconds',
    help: 'Durable publishes: from ingress to the answer of Redis (stored, refused or failed).',
    buckets: ROUND_TRIP_BUCKETS,
    registers: [registry],
  });
  http.roundTrip = new Histogram({
    name: 'meshbus_http_request_round_trip_seconds',
    help: 'Answered POST /v1/request: from publishing the request to the reply.',
    buckets: ROUND_TRIP_BUCKETS,
    registers: [registry],
  });
  const mine = { delivery: node.timings.delivery, durableWrite: node.timings.durableWrite };
  return {
    registry,
    detach() {
      if (node.timings.delivery === mine.delivery) node.timings.delivery = idle.delivery;
      if (node.timings.durableWrite === mine.durableWrite) node.timings.durableWrite = idle.durableWrite;
      registry.clear();
    },
  };
}

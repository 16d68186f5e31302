import type { SubscriptionBound } from './subscription-bounds.js';
import type { SubscriberKind } from './subscriber.js';

/** Counters of one node, read by the HTTP API and the metrics endpoint. */
export interface NodeStats {
  msgsIn: number;
  msgsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Events accepted with no receiver anywhere, and events a peer forwarded for subscriptions here that ended before it heard (SPEC 10.3). */
  noInterest: number;
  slowConsumers: number;
  /** Times a client publisher was paused because a receiver had its high-water mark unsent. */
  flowPauses: number;
  /** Times a paused client publisher gave up waiting after maxStall (its receivers were marked overrun). */
  flowStalls: number;
  staleConnections: number;
  authFailures: number;
  /** PUB or SUB refused by the client's token permissions. */
  permissionDenied: number;
  /** Publishes dropped by the per-connection rate limit. */
  rateLimited: number;
  /** SUBs refused MB_ERR_TOO_MANY_SUBSCRIPTIONS, by the bound they hit (subscription-bounds.ts). */
  subscriptionsRefused: Record<SubscriptionBound, number>;
  /**
   * Not a counter: the weight of the subscriptions in the routing table now, by owner kind, kept by the
   * table (subscription-weight.ts; what the subscription limits count, beside RoutingTable.byOwner's count).
   */
  subscriptionWeight: Record<SubscriberKind, number>;
  /** Live connections closed because their token expired. */
  tokensExpired: number;
  protocolErrors: number;
  errorsSent: number;
  connectionsTotal: number;
  connectionsRefused: number;
  /**
   * Every event lost on this node, each once, by reason (core/README
   * "Counters"): with what receivers got, they add up to what was sent.
   */
  dropped: {
    /** Events a client connection lost: dropped from its queue ('drop'), or still queued when it closed (slow consumer, fatal ERROR, GOODBYE past the bound, a closed socket). */
    slow: number;
    /** The same for peer links (leaves and gateways too): dropped from a link's queue (a peer that reads slowly), or still queued when the link closed. Each link's own share is its `dropped` (peers view). */
    slowPeer: number;
    /** Events not sent over a link because they would pass their maxHops: one per link skipped (each link's `droppedHops`). */
    maxHops: number;
    /** Events from a peer older than one already delivered from their origin (a replaced link's late events: per-publisher order wins over delivery, cluster origin-order.ts). */
    outOfOrder: number;
    /** Durable publishes refused because too many writes waited for Redis. */
    storeBacklog: number;
    /** Queue-group events a peer sent for a group whose members here had all ended (max reached, unsubscribed) with no other member to take them (SPEC 10.3). */
    noQueueMember: number;
    /** Events not sent over a peer link because their payload is larger than the peer's maxPayload (cluster/README.md "Limits"): one per link skipped. */
    tooLargeForPeer: number;
    /** Events from a peer dropped because their payload is larger than this node's maxPayload (a peer that does not skip them: an older node). */
    tooLargeFromPeer: number;
  };
  /** Trace hop records this node published. */
  traceHops: number;
  /**
   * Durable store: entries read back from Redis that could not be decoded
   * (skipped), history pages read, SUB `since` refused by the replay bounds;
   * `redisUp` 1 while the write connection to Redis is ready, 0 while not, -1
   * on a node without durability; `writesPending` durable writes sent to Redis
   * and not answered yet; `full` durable publishes refused by a store quota
   * (MB_ERR_STORE_FULL), by quota: new topics past a rule's `maxTopics`,
   * delayed publishes past the mesh's delayed bound, payloads past `maxEventBytes`;
   * `deadLetters` jobs given up after their attempts and kept as dead letters, by
   * kind: a work queue's job, a delayed publish.
   */
  store: {
    corrupt: number;
    replayPages: number;
    replaysRefused: number;
    redisUp: number;
    writesPending: number;
    full: { topics: number; delayed: number; eventSize: number; jobs: number };
    deadLetters: { queue: number; delayed: number };
  };
  /**
   * HTTP API answers not written out yet (http/reply-memory.ts): `heldBytes`
   * their body bytes held now, `refused` answers refused 503
   * MB_ERR_SLOW_CONSUMER at a bound, `cut` connections destroyed because
   * their socket took nothing for writeDeadline while answer bytes waited.
   */
  httpReplies: { heldBytes: number; refused: number; cut: number };
}

/** Takes one duration, in seconds (a prom-client Histogram satisfies it). */
export interface LatencyObserver {
  observe(seconds: number): void;
}

const IGNORE: LatencyObserver = { observe() {} };

/**
 * Where the node reports durations. Each is a no-op until someone who
 * exports them (the HTTP API's /metrics) puts an observer in; so a node that
 * exports nothing measures nothing, and core never loads a metrics library.
 */
export interface NodeTimings {
  /**
   * One event in DELIVERY_SAMPLE: from routing it (a client's, the HTTP API's
   * or a peer's event) to the end of the event-loop turn that handed it to
   * the receivers' sockets. Events on durable topics are timed by
   * `durableWrite` instead.
   */
  delivery: LatencyObserver;
  /** Every durable publish: from ingress to Redis's answer (stored, or refused/failed). */
  durableWrite: LatencyObserver;
}

/** One event in this many is timed for `NodeTimings.delivery` (a power of two). */
export const DELIVERY_SAMPLE = 16;

export function newTimings(): NodeTimings {
  return { delivery: IGNORE, durableWrite: IGNORE };
}

/**
 * Times one routed event in DELIVERY_SAMPLE for `timings.delivery`: the
 * observation is made in setImmediate, after the transports' next-tick write
 * batches of this turn went to their sockets. One clock read per sampled
 * event and one callback per event-loop turn that had one (a turn routing a
 * 64 KiB input chunk of small events scheduled ~20 callbacks before), a
 * decrement for the others; nothing more while `timings.delivery` is the no-op.
 */
export class DeliveryTimer {
  private left = 0;
  /** Start times (performance.now(), ms) of this turn's sampled events, observed together when the turn ends. */
  private readonly started: number[] = [];

  constructor(private readonly timings: NodeTimings) {}

  /** Called as an event is routed. */
  tick(): void {
    if (this.left-- > 0) return;
    this.left = DELIVERY_SAMPLE - 1;
    // Nobody exports delivery times (no /metrics): no clock read, no callback.
    if (this.timings.delivery === IGNORE) return;
    if (this.started.push(performance.now()) === 1) setImmediate(observeTurn, this);
  }

  /** The turn of the sampled events ended: one observation each. */
  observed(): void {
    const end = performance.now();
    const d = this.timings.delivery;
    for (const t0 of this.started) d.observe((end - t0) / 1000);
    this.started.length = 0;
  }
}

/** setImmediate callback of DeliveryTimer (a plain function: no closure per turn). */
function observeTurn(d: DeliveryTimer): void {
  d.observed();
}

export function newStats(): NodeStats {
  return {
    msgsIn: 0,
    msgsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    noInterest: 0,
    slowConsumers: 0,
    flowPauses: 0,
    flowStalls: 0,
    staleConnections: 0,
    authFailures: 0,
    permissionDenied: 0,
    rateLimited: 0,
    subscriptionsRefused: { connection: 0, node: 0, host: 0 },
    subscriptionWeight: { client: 0, peer: 0, leaf: 0, gateway: 0, internal: 0 },
    tokensExpired: 0,
    protocolErrors: 0,
    errorsSent: 0,
    connectionsTotal: 0,
    connectionsRefused: 0,
    dropped: { slow: 0, slowPeer: 0, maxHops: 0, outOfOrder: 0, storeBacklog: 0, noQueueMember: 0, tooLargeForPeer: 0, tooLargeFromPeer: 0 },
    traceHops: 0,
    store: { corrupt: 0, replayPages: 0, replaysRefused: 0, redisUp: -1, writesPending: 0, full: { topics: 0, delayed: 0, eventSize: 0, jobs: 0 }, deadLetters: { queue: 0, delayed: 0 } },
    httpReplies: { heldBytes: 0, refused: 0, cut: 0 },
  };
}

/**
 * Publish counts per topic for the dashboard's "top topics": bounded in
 * size, cheap on the publish path (one map hit keyed by the header's topic
 * hash; the topic string is decoded only the first time a hash is seen).
 * When full, the less-published half is forgotten, so the topics that stay
 * hot stay listed and memory stays bounded whatever the topic cardinality.
 * Two topics with the same 32-bit hash share a count (display only).
 */
export class TopicCounter {
  private readonly counts = new Map<number, { topic: string; n: number }>();
  /** The key and entry of the last counted event (runs of one topic skip the map lookup). */
  private lastKey = 0;
  private lastEntry: { topic: string; n: number } | undefined;
  /** Events of topics not counted because the table was full (room is made at most once per `evictEveryMs`). */
  private missed = 0;
  private lastEvict = 0;

  /**
   * `capacity`: topics counted at most. `evictEveryMs`: how often, at most, a
   * full table drops its less published half to make room. Evicting on every
   * miss sorted the table every few hundred events once more topics than
   * `capacity` were in flight (10,000 topics: ~5 % of the node's time).
   */
  constructor(
    readonly capacity = 1024,
    private readonly evictEveryMs = 1000,
  ) {}

  /**
   * Counts one event with header topic hash `hash`; `source.topic` (a Frame's
   * lazy getter) is read only for a hash not seen before. No allocation for a
   * known topic, nor for an unknown one while the table is full: that event
   * is not counted (the figures are approximate, for the dashboard's top topics).
   * Keyed by the hash as a signed 32-bit integer (a V8 small integer: the
   * unsigned hash above 2^30 is a heap number, slower to hash and compare);
   * the clock (`now`, ms, default the one tick() set, else `Date.now()`) is read only when the table
   * is full. Measured at
   * 1 → 1, 16 B: a `Date.now()` per event here was ~8 % of the node's time.
   */
  count(hash: number, source: { readonly topic: string }, now?: number): void {
    const key = hash | 0;
    const l = this.lastEntry;
    if (l !== undefined && key === this.lastKey) {
      l.n++;
      return;
    }
    const e = this.counts.get(key);
    if (e !== undefined) {
      e.n++;
      this.lastKey = key;
      this.lastEntry = e;
      return;
    }
    if (this.counts.size >= this.capacity) {
      // The owner's timer's clock (tick) when it has one: with more topics in flight than the
      // table holds, a Date.now() per event was a few % of the node's time.
      const t = now ?? (this.clock > 0 ? this.clock : Date.now());
      if (t - this.lastEvict < this.evictEveryMs) {
        this.missed++;
        return;
      }
      this.lastEvict = t;
      this.evict();
    }
    const n = { topic: source.topic, n: 1 };
    this.counts.set(key, n);
    this.lastKey = key;
    this.lastEntry = n;
  }

  /** The owner's clock (ms), set by tick(): read instead of Date.now() once set. */
  private clock = 0;

  /** Sets the clock count() reads when the table is full (the node's timer: every 20 ms to ~1 s). */
  tick(now: number): void {
    this.clock = now;
  }

  /** Events not counted because the table was full. */
  get uncounted(): number {
    return this.missed;
  }

  /** The `n` most published topics, most first. */
  top(n: number): Array<{ topic: string; count: number }> {
    return [...this.counts.values()]
      .sort((a, b) => b.n - a.n)
      .slice(0, n)
      .map((e) => ({ topic: e.topic, count: e.n }));
  }

  private evict(): void {
    const keep = [...this.counts].sort((a, b) => b[1].n - a[1].n).slice(0, this.capacity >>> 1);
    this.counts.clear();
    this.lastEntry = undefined;
    for (const [k, v] of keep) this.counts.set(k, v);
  }
}

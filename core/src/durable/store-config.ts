import { TopicTrie, assertPattern, forEachEntry, copyBytes, equalBytesAt, topicHash, type Frame } from '@meshbus/proto';
import { ConfigError, MAX_TIMER_MS } from '../config-error.js';
import { isReservedTopic, startsWithWildcard } from '../auth/reserved-topics.js';
import { parseRedisTarget, type RedisTarget } from './redis-target.js';

/** One durable topic pattern: what the node keeps in Redis for the topics it matches. */
export interface DurableTopic {
  /** Topic pattern (`*`, `>` allowed), e.g. `orders.>`. */
  pattern: string;
  /**
   * History kept per topic (a Redis stream): at most `size` events and none
   * older than `maxAgeMs`. Absent or size 0: no history (events still get a position).
   */
  history?: { size?: number; maxAgeMs?: number };
  /** Keep the last event of each matching topic: new subscribers get it at once. */
  latest?: boolean;
  /**
   * Distinct topics this rule may hold in Redis, counted by the whole mesh (a
   * Redis set per rule). Every topic of a rule keeps keys in Redis (its
   * position counter; history and latest value when configured) until an
   * operator deletes them, so a client publishing on ever new topics grew the
   * store without bound. Past it the first event of a new topic is refused
   * with MB_ERR_STORE_FULL; topics already held go on. Default 10,000.
   */
  maxTopics?: number;
}

/** How the node uses Redis. Without `redis` every durable feature is off. */
export interface DurableOptions {
  /**
   * Where the store is (absent: durability off). One server:
   * `redis://[user:pass@]host:port[/db]` (or `rediss://`). A Redis Cluster:
   * `redis-cluster://[user:pass@]host:port[,host:port…]` (seeds). A Sentinel
   * setup: `redis-sentinel://[user:pass@]host:port[,host:port…]/<master name>[/db]`
   * (the sentinels; the credentials are the primary's). See redis-target.ts.
   */
  redis?: string;
  /**
   * Prefix of every Redis key. Default `meshbus:`. Keys of one topic carry the
   * topic as a hash tag (`<prefix>h:{<topic>}`), BullMQ's keys the prefix
   * (`{<prefix>bull}:…`), so every script stays within one cluster slot.
   */
  prefix?: string;
  /**
   * Replicas that must confirm a durable write (Redis `WAIT`) before the
   * event is delivered and its publisher ACKed. Default 0: the ACK means the
   * primary executed the write, which a failover can lose (replication is
   * asynchronous). With N > 0 a write not confirmed by N replicas within
   * `waitTimeoutMs` is NACKed MB_ERR_STORE_UNAVAILABLE (it may still be kept).
   * An integer 0..MAX_WAIT_REPLICAS (16).
   */
  waitReplicas?: number;
  /** How long a durable write waits for `waitReplicas` confirmations, ms. Default 1000; below `writeTimeoutMs`. */
  waitTimeoutMs?: number;
  /** Durable topic patterns; the first matching entry applies. */
  topics?: DurableTopic[];
  /** Durable work queues (BullMQ). */
  queues?: {
    /** Deliveries of one job before it goes to the dead-letter queue. Default 5. */
    attempts?: number;
    /** First retry delay, ms, doubled each attempt. Default 1000. */
    backoffMs?: number;
    /** How long a consumer has to ACK/NACK a delivery, ms. Default 30000. */
    ackTimeoutMs?: number;
    /** Durable queue subscriptions one connection may hold; past it MB_ERR_TOO_MANY_SUBSCRIPTIONS. Default 16. */
    perConnection?: number;
    /**
     * Durable queue subscriptions on the node. Each distinct (pattern, group)
     * with a local consumer is one BullMQ worker, i.e. one blocking Redis
     * connection, so this also bounds the node's Redis connections. Default 256.
     */
    perNode?: number;
    /**
     * Distinct (pattern, group) queues the node knows (the Redis set shared by
     * the mesh); every event adds one job per matching queue, so past it a new
     * queue is refused (MB_ERR_TOO_MANY_SUBSCRIPTIONS) and not learned. Default 1024.
     */
    maxQueues?: number;
    /**
     * Of the queues the node knows, how many the clients of one host (IPv4,
     * IPv6 /64) may have made through it; past it a new queue from that host
     * is refused (MB_ERR_TOO_MANY_SUBSCRIPTIONS). Default 256.
     */
    maxPerHost?: number;
    /**
     * How long a queue is kept with no member anywhere in the mesh, ms: then
     * it leaves the store's list and events stop being added to it (its jobs
     * stay, for a member that subscribes again). 0: kept for ever. Default
     * 86,400,000 (24 h); at least 1000.
     */
    inactiveMs?: number;
    /**
     * Jobs not yet done in one queue, mesh-wide (SPEC 15.8): past it a publish
     * that would add a job is refused with MB_ERR_STORE_FULL before anything
     * is written. Default 100,000.
     */
    maxJobs?: number;
  };
  /**
   * The store deadline, ms: a durable publish that Redis has not answered
   * within it is NACKed, and every other Redis wait a client depends on
   * (queue registration, replay, latest values, delayed publish) fails at it
   * with MB_ERR_STORE_UNAVAILABLE (store-deadline.ts). Default 5000.
   */
  writeTimeoutMs?: number;
  /**
   * Store quotas (SPEC 15.8): past one, a durable publish is refused with
   * MB_ERR_STORE_FULL (4030) and neither stored nor delivered.
   */
  quota?: {
    /** Largest payload of a durable or delayed publish, bytes. Default 1 MiB (the default maxPayload). */
    maxEventBytes?: number;
    /** Delayed publishes waiting in the whole mesh (counted in Redis). Default 10,000. */
    delayedEvents?: number;
    /** Bytes (stored frames) of the delayed publishes waiting in the whole mesh. Default 64 MiB. */
    delayedBytes?: number;
  };
  /**
   * History replays (SUB `since`): read in pages, the next page only once the
   * subscriber's outbound queue has drained, so one replay never holds more
   * than a page in Redis or in the node.
   */
  replay?: {
    /** Most events read per Redis call. Default 256. */
    pageEvents?: number;
    /** Most bytes (stored frames) read per Redis call; a page holds at least one event. Default 1 MiB. */
    pageBytes?: number;
    /** Replays in progress on one connection; past it a SUB `since` gets ERROR MB_ERR_TOO_MANY_REPLAYS. Default 4. */
    perConnection?: number;
    /** Replays in progress on the node; past it a SUB `since` gets ERROR MB_ERR_TOO_MANY_REPLAYS. Default 64. */
    perNode?: number;
  };
}

export interface ResolvedTopicRule {
  readonly pattern: string;
  readonly size: number;
  readonly maxAgeMs: number;
  readonly latest: boolean;
  /** Distinct topics the rule may hold in Redis (mesh-wide). */
  readonly maxTopics: number;
}

export interface ResolvedDurable {
  redis: string;
  /** `redis` parsed: one server, a cluster or a sentinel setup. */
  target: RedisTarget;
  waitReplicas: number;
  waitTimeoutMs: number;
  prefix: string;
  topics: ResolvedTopicRule[];
  attempts: number;
  backoffMs: number;
  ackTimeoutMs: number;
  queueLimits: { perConnection: number; perNode: number; maxQueues: number; maxPerHost: number; maxJobs: number };
  /** How long a queue with no member anywhere is kept, ms; 0: for ever. */
  queueInactiveMs: number;
  writeTimeoutMs: number;
  quota: { maxEventBytes: number; delayedEvents: number; delayedBytes: number };
  replay: { pageEvents: number; pageBytes: number; perConnection: number; perNode: number };
}

/**
 * Most replicas a durable write may wait for (durable.waitReplicas,
 * --redis-wait-replicas). A Redis primary with more replicas than this is
 * unusual; a larger number is a typo (it could never be met: every write
 * would be NACKed after waitTimeoutMs).
 */
export const MAX_WAIT_REPLICAS = 16;

const nonNeg = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Validates `durable` options; undefined when Redis is not configured. ConfigError on bad values. */
export function resolveDurable(o: DurableOptions | undefined): ResolvedDurable | undefined {
  if (!o?.redis) return undefined;
  const target = parseRedisTarget(o.redis);
  const topics: ResolvedTopicRule[] = [];
  for (const t of o.topics ?? []) {
    try {
      assertPattern(t.pattern);
    } catch (e) {
      throw new ConfigError(`durable.topics: pattern "${t.pattern}": ${(e as Error).message}`);
    }
    const size = t.history?.size ?? (t.history ? 1000 : 0);
    const maxAgeMs = t.history?.maxAgeMs ?? 0;
    if (!nonNeg(size) || !nonNeg(maxAgeMs)) throw new ConfigError(`durable.topics: "${t.pattern}": history.size and history.maxAgeMs must be non-negative integers`);
    const maxTopics = t.maxTopics ?? 10_000;
    if (!(nonNeg(maxTopics) && maxTopics > 0)) throw new ConfigError(`durable.topics: "${t.pattern}": maxTopics must be a positive integer`);
    topics.push({ pattern: t.pattern, size, maxAgeMs, latest: t.latest === true, maxTopics });
  }
  const q = o.queues ?? {};
  const r: ResolvedDurable = {
    redis: o.redis,
    target,
    waitReplicas: o.waitReplicas ?? 0,
    waitTimeoutMs: o.waitTimeoutMs ?? 1000,
    prefix: o.prefix ?? 'meshbus:',
    topics,
    attempts: q.attempts ?? 5,
    backoffMs: q.backoffMs ?? 1000,
    ackTimeoutMs: q.ackTimeoutMs ?? 30_000,
    queueLimits: { perConnection: q.perConnection ?? 16, perNode: q.perNode ?? 256, maxQueues: q.maxQueues ?? 1024, maxPerHost: q.maxPerHost ?? 256, maxJobs: q.maxJobs ?? 100_000 },
    queueInactiveMs: q.inactiveMs ?? 24 * 3_600_000,
    writeTimeoutMs: o.writeTimeoutMs ?? 5000,
    quota: {
      maxEventBytes: o.quota?.maxEventBytes ?? 1024 * 1024,
      delayedEvents: o.quota?.delayedEvents ?? 10_000,
      delayedBytes: o.quota?.delayedBytes ?? 64 * 1024 * 1024,
    },
    replay: {
      pageEvents: o.replay?.pageEvents ?? 256,
      pageBytes: o.replay?.pageBytes ?? 1024 * 1024,
      perConnection: o.replay?.perConnection ?? 4,
      perNode: o.replay?.perNode ?? 64,
    },
  };
  for (const [k, v] of Object.entries(r.queueLimits)) {
    if (!(nonNeg(v) && v > 0)) throw new ConfigError(`durable.queues.${k} must be a positive integer`);
  }
  for (const [k, v] of Object.entries(r.quota)) {
    if (!(nonNeg(v) && v > 0)) throw new ConfigError(`durable.quota.${k} must be a positive integer`);
  }
  for (const [k, v] of Object.entries(r.replay)) {
    if (!(nonNeg(v) && v > 0)) throw new ConfigError(`durable.replay.${k} must be a positive integer`);
  }
  for (const [k, path] of [['attempts', 'queues.attempts'], ['ackTimeoutMs', 'queues.ackTimeoutMs'], ['writeTimeoutMs', 'writeTimeoutMs']] as const) {
    if (!(nonNeg(r[k]) && r[k] > 0)) throw new ConfigError(`durable.${path} must be a positive integer`);
  }
  if (!(nonNeg(r.waitReplicas) && r.waitReplicas <= MAX_WAIT_REPLICAS)) {
    throw new ConfigError(`durable.waitReplicas must be an integer from 0 to ${MAX_WAIT_REPLICAS}, got ${r.waitReplicas}`);
  }
  if (r.waitReplicas > 0 && !(nonNeg(r.waitTimeoutMs) && r.waitTimeoutMs > 0 && r.waitTimeoutMs < r.writeTimeoutMs)) {
    throw new ConfigError(`durable.waitTimeoutMs must be a positive integer below durable.writeTimeoutMs (${r.writeTimeoutMs})`);
  }
  if (!(nonNeg(r.queueInactiveMs) && (r.queueInactiveMs === 0 || r.queueInactiveMs >= 1000))) {
    throw new ConfigError(`durable.queues.inactiveMs must be 0 (never) or an integer of at least 1000 ms, got ${r.queueInactiveMs}`);
  }
  if (!nonNeg(r.backoffMs)) throw new ConfigError('durable.queues.backoffMs must be a non-negative integer');
  // Each arms a timer (a retry's backoff doubles from backoffMs): Node fires one past 2^31-1 ms after 1 ms.
  for (const [k, v] of [['queues.ackTimeoutMs', r.ackTimeoutMs], ['writeTimeoutMs', r.writeTimeoutMs], ['queues.backoffMs', r.backoffMs * 2 ** (r.attempts - 1)]] as const) {
    if (v > MAX_TIMER_MS) throw new ConfigError(`durable.${k} must keep every timer within ${MAX_TIMER_MS} ms (the longest timer)${k === 'queues.backoffMs' ? ': backoffMs x 2^(attempts-1)' : ''}, got ${v}`);
  }
  return r;
}

interface CacheEntry<T> {
  bytes: Uint8Array;
  value: T;
  version: number;
}

const MAX_CACHE = 16_384;

/**
 * Which durable rule (if any) applies to a frame's topic. The answer is
 * cached per topic hash and confirmed against the topic bytes, like the
 * routing table's cache: a repeated topic costs one map hit and a byte compare.
 * `version` is bumped when the set of durable queues changes.
 */
export class DurableMatcher<Q extends NonNullable<unknown>> {
  private readonly rules = new TopicTrie<{ i: number; rule: ResolvedTopicRule }>();
  private readonly queues = new TopicTrie<Q>();
  /**
   * Queues whose pattern starts with a wildcard (`>`, `*.…`): they never take
   * reserved topics (another client's inbox replies, trace records), which
   * would otherwise be stored in Redis and come out on `_DLQ.<group>` to
   * anyone (SPEC 11.1, 15.5).
   */
  private readonly wideQueues = new TopicTrie<Q>();
  private readonly cache = new Map<number, CacheEntry<TopicDurability<Q> | null>>();
  private version = 0;

  constructor(rules: ResolvedTopicRule[]) {
    rules.forEach((rule, i) => this.rules.add(rule.pattern, { i, rule }));
  }

  addQueue(pattern: string, q: Q): void {
    if (this.queuesFor(pattern).add(pattern, q)) this.version++;
  }
  removeQueue(pattern: string, q: Q): void {
    if (this.queuesFor(pattern).remove(pattern, q)) this.version++;
  }
  private queuesFor(pattern: string): TopicTrie<Q> {
    return startsWithWildcard(pattern) ? this.wideQueues : this.queues;
  }

  /** What is durable about the topic of `f`: null when nothing (the common case). */
  forFrame(f: Frame): TopicDurability<Q> | null {
    const hash = f.topicHash;
    const e = this.cache.get(hash);
    const buf = f.buf;
    const start = f.topicStart;
    const len = f.topicLen;
    if (e !== undefined && e.version === this.version && e.bytes.length === len && equalBytesAt(e.bytes, buf, start)) return e.value;
    const value = this.forTopic(f.topic);
    if (this.cache.size >= MAX_CACHE) this.cache.clear();
    const bytes = copyBytes(buf, start, start + len);
    if (topicHash(bytes) === hash) this.cache.set(hash, { bytes, value, version: this.version });
    return value;
  }

  /** Uncached lookup by topic string. */
  forTopic(topic: string): TopicDurability<Q> | null {
    let best: { i: number; rule: ResolvedTopicRule } | undefined;
    this.rules.match(topic, (r) => {
      if (!best || r.i < best.i) best = r;
    });
    const queues: Q[] = [];
    this.queues.match(topic, (q) => queues.push(q));
    if (!isReservedTopic(topic)) this.wideQueues.match(topic, (q) => queues.push(q));
    if (!best && queues.length === 0) return null;
    return { topic, rule: best?.rule, queues };
  }

  /** Rules with `latest: true`. */
  latestRules(): ResolvedTopicRule[] {
    const out: ResolvedTopicRule[] = [];
    forEachEntry(this.rules, (_p, r) => {
      if (r.rule.latest) out.push(r.rule);
    });
    return out;
  }
}

/** What the node does with an event on a durable topic. */
export interface TopicDurability<Q> {
  topic: string;
  /** The durable topic rule (history / latest), if one matches. */
  rule: ResolvedTopicRule | undefined;
  /** Durable work queues whose pattern matches. */
  queues: Q[];
}

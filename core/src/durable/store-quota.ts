import { StoreError } from '@meshbus/proto';
import { TopicReclaim } from './topic-reclaim.js';
import type { RedisClient } from './redis-connect.js';
import type { ResolvedDurable, ResolvedTopicRule } from './store-config.js';
import { corruptKeyReplaced, type CorruptWatch } from './corrupt-key.js';

/**
 * Store quotas (SPEC 15.8): what one publisher can make the shared Redis
 * hold. Without them a client allowed to publish on a durable rule grew Redis
 * without bound: 300 delayed publishes of 1 MB (one-day delay) added 472 MB
 * in 8 s, and every new topic under a rule is new keys that stay.
 *
 * Both counts live in Redis, so every node of a mesh sees the same ones and
 * a mesh of N nodes holds the same bound as one node.
 */

/**
 * Both counters are in shared Redis, where anything may be written: a key of
 * another Redis type (or a count that is not one) is corrupt, replaced by an
 * empty one (the count restarts rather than wedges, SPEC 15.7/15.8), and the
 * script says so (its second result, 1) for the node to count and log.
 */
const REPLACE_WRONG_TYPE = `
local function replaceUnless(key, kind)
  local t = redis.call('TYPE', key)['ok']
  if t == kind or t == 'none' then return 0 end
  redis.call('DEL', key)
  return 1
end
local function count(v)
  if v == false then return 0, 0 end
  local x = tonumber(v)
  if x == nil or x ~= x or x < 0 or x >= 9007199254740992 then return 0, 1 end
  return math.floor(x), 0
end
`;

/**
 * KEYS: the rule's topic set. ARGV: topic, max. → {1 admitted (held already
 * or added), 0 the rule holds `max` other topics; 1 the set was replaced}.
 * One script, so two nodes admitting different topics at once never take the
 * set past `max`.
 */
const ADMIT = `${REPLACE_WRONG_TYPE}
local corrupt = replaceUnless(KEYS[1], 'set')
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return {1, corrupt} end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return {0, corrupt} end
redis.call('SADD', KEYS[1], ARGV[1])
return {1, corrupt}
`;

/** The counter hash's events and bytes: `corrupt` 1 when it was another type or held something but a count (then both restart at 0). */
const READ_COUNTER = `${REPLACE_WRONG_TYPE}
local corrupt = replaceUnless(KEYS[1], 'hash')
local n, cn = count(redis.call('HGET', KEYS[1], 'n'))
local b, cb = count(redis.call('HGET', KEYS[1], 'b'))
if cn + cb > 0 then n, b, corrupt = 0, 0, 1 end
`;

/**
 * KEYS: the delayed counter hash {n: events, b: bytes}. ARGV: bytes, max
 * events, max bytes. → {1 reserved, 0 full; 1 the counter was replaced}.
 */
const RESERVE = `${READ_COUNTER}
local add = tonumber(ARGV[1])
if n + 1 > tonumber(ARGV[2]) or b + add > tonumber(ARGV[3]) then
  if corrupt == 1 then redis.call('HSET', KEYS[1], 'n', 0, 'b', 0) end
  return {0, corrupt}
end
redis.call('HSET', KEYS[1], 'n', n + 1, 'b', b + add)
return {1, corrupt}
`;

/** KEYS: the delayed counter hash. ARGV: bytes. Never below 0. → {events still counted; 1 the counter was replaced}. */
const RELEASE = `${READ_COUNTER}
n = n - 1
b = b - tonumber(ARGV[1])
if n < 0 then n = 0 end
if b < 0 or n == 0 then b = 0 end
redis.call('HSET', KEYS[1], 'n', n, 'b', b)
return {n, corrupt}
`;

interface QuotaCommands {
  mbAdmitTopic(set: string, topic: string, max: number): Promise<[number, number]>;
  mbReserveDelayed(key: string, bytes: number, maxEvents: number, maxBytes: number): Promise<[number, number]>;
  mbReleaseDelayed(key: string, bytes: number): Promise<[number, number]>;
}

/**
 * True when a rule's topics expire: its history ages out and it keeps no
 * latest value (kept until replaced). The append script gives such a
 * topic's keys the history's TTL, and TopicReclaim frees its place in the
 * rule's topic set once they are gone.
 */
export function topicsExpire(rule: Pick<ResolvedTopicRule, 'maxAgeMs' | 'latest'>): boolean {
  return rule.maxAgeMs > 0 && !rule.latest;
}

/** Topics this node knows a rule holds; cleared when full (a topic then costs one script again). */
const MAX_ADMITTED = 65_536;

/** Refusals per quota (the node's `stats.store.full`). */
export interface QuotaRefusals {
  topics: number;
  delayed: number;
  eventSize: number;
  /** Counted by JobQuota (job-quota.ts). */
  jobs: number;
}

export class StoreQuota {
  private readonly r: RedisClient & QuotaCommands;
  /**
   * Topics admitted: the hot path (a topic the rule already holds) is one Set
   * lookup, no Redis call. A topic an operator removed from the set stays
   * admitted here until the cache is cleared or the node restarts.
   */
  private readonly admitted = new Set<string>();
  /**
   * Topics admitted of rules whose topics expire (TopicReclaim), with when
   * the admission stops counting, ms: half the rule's maxAgeMs after it. A
   * topic is reclaimed only after maxAgeMs without a write, so by then every
   * node's admission of it has lapsed and its next write is admitted again
   * (counted), never written outside the set.
   */
  private readonly admittedUntil = new Map<string, number>();
  private readonly reclaim: TopicReclaim;
  /**
   * Admissions waiting for Redis, per topic: later events of the same topic
   * wait on the same promise, so their appends are sent in publish order.
   */
  private readonly admitting = new Map<string, Promise<void>>();

  constructor(
    redis: RedisClient,
    private readonly cfg: Pick<ResolvedDurable, 'prefix' | 'quota'>,
    private readonly refused: QuotaRefusals,
    /** Where counters found corrupt and replaced are counted and logged (the node). */
    private readonly watch?: CorruptWatch,
    /** A topic's meta key (HistoryStore.metaKey): what shows an expiring rule's topic still holds something. */
    metaKey: (topic: string) => string = (t) => `${cfg.prefix}m:{${t}}`,
  ) {
    this.reclaim = new TopicReclaim(redis, metaKey);
    redis.defineCommand('mbAdmitTopic', { numberOfKeys: 1, lua: ADMIT });
    redis.defineCommand('mbReserveDelayed', { numberOfKeys: 1, lua: RESERVE });
    redis.defineCommand('mbReleaseDelayed', { numberOfKeys: 1, lua: RELEASE });
    this.r = redis as RedisClient & QuotaCommands;
  }

  /** The set of the topics `rule` holds in Redis (mesh-wide). */
  topicSetKey(rule: ResolvedTopicRule): string {
    return `${this.cfg.prefix}tp:${rule.pattern}`;
  }
  /** The delayed-publish counter (mesh-wide). */
  get delayedKey(): string {
    return `${this.cfg.prefix}dq`;
  }

  /**
   * undefined when `topic` may be written now (the common case); else a
   * promise that resolves once Redis admitted it, or rejects with
   * StoreError MB_ERR_STORE_FULL when its rule holds `maxTopics` other topics
   * (or with Redis's error).
   */
  admitTopic(topic: string, rule: ResolvedTopicRule): Promise<void> | undefined {
    const expiring = topicsExpire(rule);
    if (expiring ? (this.admittedUntil.get(topic) ?? 0) > performance.now() : this.admitted.has(topic)) return undefined;
    let p = this.admitting.get(topic);
    if (!p) {
      p = this.admit(topic, rule, expiring).finally(() => this.admitting.delete(topic));
      this.admitting.set(topic, p);
    }
    // One refusal counted per publish refused, also for publishes that waited on the same admission.
    return p.catch((e: unknown) => {
      if ((e as { code?: unknown }).code === 'MB_ERR_STORE_FULL') this.refused.topics++;
      throw e;
    });
  }

  private async admit(topic: string, rule: ResolvedTopicRule, expiring: boolean): Promise<void> {
    const key = this.topicSetKey(rule);
    let ok = await this.admitOnce(key, topic, rule);
    // Full: an expiring rule's set may hold topics whose keys are gone; their room is given back, then one more try.
    if (!ok && expiring && (await this.reclaim.reclaim(key)) > 0) ok = await this.admitOnce(key, topic, rule);
    if (!ok) throw new StoreError('MB_ERR_STORE_FULL', `durable rule "${rule.pattern}" holds ${rule.maxTopics} topics (maxTopics); "${topic}" is a new one`);
    if (expiring) {
      if (this.admittedUntil.size >= MAX_ADMITTED) this.admittedUntil.clear();
      this.admittedUntil.set(topic, performance.now() + rule.maxAgeMs / 2);
    } else {
      if (this.admitted.size >= MAX_ADMITTED) this.admitted.clear();
      this.admitted.add(topic);
    }
  }

  private async admitOnce(key: string, topic: string, rule: ResolvedTopicRule): Promise<boolean> {
    const [ok, corrupt] = await this.r.mbAdmitTopic(key, topic, rule.maxTopics);
    if (Number(corrupt) === 1) corruptKeyReplaced(this.watch, key, 'topic set of a rule');
    return Number(ok) === 1;
  }

  /** Throws StoreError MB_ERR_STORE_FULL for a payload past `maxEventBytes`. */
  checkSize(payloadLen: number): void {
    const max = this.cfg.quota.maxEventBytes;
    if (payloadLen > max) throw this.full('eventSize', `durable payload of ${payloadLen} bytes, limit ${max} (maxEventBytes)`);
  }

  /**
   * Reserves room for one delayed publish of `bytes` (mesh-wide); rejects
   * with StoreError MB_ERR_STORE_FULL past `delayedEvents` or `delayedBytes`.
   * The reservation is released when the job is published (or given up).
   */
  async reserveDelayed(bytes: number): Promise<void> {
    const { delayedEvents, delayedBytes } = this.cfg.quota;
    const [ok, corrupt] = await this.r.mbReserveDelayed(this.delayedKey, bytes, delayedEvents, delayedBytes);
    if (Number(corrupt) === 1) corruptKeyReplaced(this.watch, this.delayedKey, 'delayed publish counter');
    if (Number(ok) !== 1) throw this.full('delayed', `delayed publishes waiting in the mesh are at their bound (${delayedEvents} events, ${delayedBytes} bytes); this one is ${bytes} bytes`);
  }

  private full(quota: keyof QuotaRefusals, detail: string): StoreError {
    this.refused[quota]++;
    return new StoreError('MB_ERR_STORE_FULL', detail);
  }

  /** Gives back a delayed publish's reservation (the byte count comes from the job: clamped, untrusted). */
  async releaseDelayed(bytes: number): Promise<void> {
    const b = Number.isSafeInteger(bytes) && bytes > 0 ? bytes : 0;
    const [, corrupt] = await this.r.mbReleaseDelayed(this.delayedKey, b);
    if (Number(corrupt) === 1) corruptKeyReplaced(this.watch, this.delayedKey, 'delayed publish counter');
  }
}

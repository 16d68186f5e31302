import { topicProblem } from '@meshbus/proto';
import type { RedisClient } from './redis-connect.js';
import { withinDeadline } from './store-deadline.js';
import { explained } from './key-conflict.js';
import { MARK } from './queue-marks.js';

/** Members whose maker's host is read per refresh, at most (maxQueues is 1,024 by default). */
const OWNERS_READ = 4096;

/** Members that are no queue removed from the set per read, at most (one SREM). */
const JUNK_PER_READ = 10_000;

/** A member of the set `<prefix>queues`: one durable queue (pattern, group). */
export function queueMember(pattern: string, group: string): string {
  return JSON.stringify([pattern, group]);
}

/**
 * [pattern, group] of a member read back from the set: untrusted (a bad
 * pattern would throw in the matcher), undefined when it is not a valid one.
 */
export function parseQueueMember(m: string): [string, string] | undefined {
  let pg: unknown;
  try {
    pg = JSON.parse(m);
  } catch {
    return undefined;
  }
  if (!Array.isArray(pg) || typeof pg[0] !== 'string' || typeof pg[1] !== 'string' || pg[1].length === 0) return undefined;
  if (topicProblem(pg[0], true)) return undefined;
  return [pg[0], pg[1]];
}

/**
 * The Redis set `<prefix>queues` of every durable queue, and its change
 * notices on `<prefix>queues:changed`, on the BullMQ producer connection.
 *
 * That connection has no commandTimeout, so each wait is bounded by the store
 * deadline (withinDeadline: StoreError MB_ERR_STORE_UNAVAILABLE after
 * `deadlineMs`). The command itself stays queued in ioredis until Redis
 * answers or the connection drops, so the same command is never queued twice:
 * one SMEMBERS at a time, one SADD per queue. A Redis that accepts
 * connections and never answers then holds one of each, not one per refresh
 * (every 5 s and per notice) or per registration retry, for as long as it is
 * silent.
 */
export class QueueSet {
  /** The SMEMBERS in flight. */
  private listing: Promise<string[]> | undefined;
  /** The one to send once it is answered, shared by every list() asked meanwhile. */
  private nextListing: Promise<string[]> | undefined;
  private readonly adding = new Map<string, Promise<void>>();

  constructor(
    private readonly redis: RedisClient,
    /** The set; its companion hash `<key>:seen` holds when each queue last had a member (queue-retention.ts). */
    readonly key: string,
    /** The notices channel: a node re-reads the set on each message. */
    readonly channel: string,
    /** writeTimeoutMs, ms. */
    private readonly deadlineMs: number,
  ) {}

  /**
   * The set's members that are queues (the others removed: valid()), read by
   * an SMEMBERS sent after the call. Asked while one is in flight, the next
   * is sent once it is answered (one, for every call meanwhile): the one in
   * flight may have run before the change a notice tells of (sharing its
   * answer, a refresh on that notice missed the queue another node had just
   * registered until the next refresh, 5 s on).
   */
  list(): Promise<string[]> {
    let op: Promise<string[]>;
    if (this.listing === undefined) op = this.listing = this.read();
    else {
      const after = this.listing.then(
        () => {},
        () => {},
      );
      op = this.nextListing ??= after.then(() => {
        this.nextListing = undefined;
        return (this.listing = this.read());
      });
    }
    return withinDeadline(op, this.deadlineMs, 'the durable queue list');
  }

  private read(): Promise<string[]> {
    const op: Promise<string[]> = this.redis.smembers(this.key).then((all) => this.valid(all), (e: unknown) => this.failed(e)).finally(() => {
      if (this.listing === op) this.listing = undefined;
    });
    return op;
  }

  /**
   * The members that are queues (parseQueueMember). The others (planted by
   * a neighbour sharing Redis, or cut short) are removed from the set, at
   * most JUNK_PER_READ per read: each was read, parsed and marked on every
   * refresh of every node (300,000 of them: ~450 MB of node memory).
   */
  private valid(all: string[]): string[] {
    const junk = all.filter((m) => parseQueueMember(m) === undefined);
    if (junk.length === 0) return all;
    this.redis.srem(this.key, ...junk.slice(0, JUNK_PER_READ)).catch(() => {
      // Redis down, or the set replaced: the next read tries again.
    });
    const bad = new Set(junk);
    return all.filter((m) => !bad.has(m));
  }

  /** The hash of the host whose client made each member (field = member, value = host). */
  get ownerKey(): string {
    return `${this.key}:owner`;
  }

  /**
   * How many of `members` (the set as read) each host made, mesh-wide: one
   * HMGET of at most OWNERS_READ members (the rest are not counted).
   */
  async owners(members: readonly string[]): Promise<Map<string, number>> {
    const read = members.slice(0, OWNERS_READ);
    const hosts = read.length === 0 ? [] : await withinDeadline(this.redis.hmget(this.ownerKey, ...read), this.deadlineMs, 'the durable queue owners');
    const counts = new Map<string, number>();
    for (const h of hosts) if (typeof h === 'string' && h.length > 0 && h.length <= 64) counts.set(h, (counts.get(h) ?? 0) + 1);
    return counts;
  }

  /** Members forgotten: their owners go too. */
  forget(members: readonly string[]): Promise<unknown> {
    return members.length === 0 ? Promise.resolve() : withinDeadline(this.redis.hdel(this.ownerKey, ...members), this.deadlineMs, 'the durable queue sweep');
  }

  /**
   * Writes back the queues this node consumes (`consumed`) that the set as
   * read (`listed`) lacks: a Redis that lost its data (restarted without
   * persistence, a failover that lost the SADD) forgot them, and a node that
   * starts afterwards would never learn them: events published through it
   * were not enqueued for the group. Redis down: the next refresh tries again.
   */
  async repair(consumed: readonly string[], listed: ReadonlySet<string>): Promise<void> {
    const missing = consumed.filter((m) => !listed.has(m));
    await Promise.all(missing.map((m) => this.add(m, 'reasserted', 'the queue set repair'))).catch(() => {});
  }

  /** The hash of when each member last had a consumer somewhere: field = member, value = ms since the epoch. */
  get seenKey(): string {
    return `${this.key}:seen`;
  }

  /**
   * Adds `member` (queueMember), marked seen now (first: a retention sweep
   * between the two would otherwise find it listed and long unseen), and
   * tells every node, `notice` as the message. `what` names the wait in the deadline's error ("redis did not
   * answer <what> within <ms> ms").
   */
  add(member: string, notice: string, what: string, host?: string): Promise<void> {
    let op = this.adding.get(member);
    if (op === undefined) {
      // Marked at the store's time (MARK); a hash of another type is left for the next sweep to replace (queue-retention.ts).
      // Its maker's host kept beside it (owners(): maxPerHost counted mesh-wide), unless a maker is known already.
      op = (this.redis.eval(MARK, 1, this.seenKey, member) as Promise<unknown>)
        .then(() => (host === undefined ? 0 : this.redis.hsetnx(this.ownerKey, member, host).catch(() => 0)))
        .then(() => this.redis.sadd(this.key, member))
        .catch((e: unknown) => this.failed(e))
        .then(() => this.redis.publish(this.channel, notice))
        .then(() => undefined)
        .finally(() => this.adding.delete(member));
      this.adding.set(member, op);
    }
    return withinDeadline(op, this.deadlineMs, what);
  }

  /** Rethrows a command's failure, as StoreKeyConflict when the set is another type (key-conflict.ts). */
  private async failed(e: unknown): Promise<never> {
    throw await explained(e, this.redis, [[this.key, 'set']], 'durable queues (every queue of the mesh)', this.deadlineMs);
  }
}

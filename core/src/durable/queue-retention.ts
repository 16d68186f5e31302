import type { RedisClient } from './redis-connect.js';
import type { QueueSet } from './queue-set.js';
import { withinDeadline } from './store-deadline.js';
import { wrongType } from './connection-error.js';
import type { Logger } from '../logger.js';
import { throttled } from '../told-recently.js';

/**
 * KEYS: the seen hash. ARGV: a member, the cutoff (ms). Deletes the
 * member's field when it is older than the cutoff (or unreadable) and
 * returns 1; 0 when it is newer: a node marked it seen since the sweep read
 * the hash (a member joined), and the queue stays.
 */
const FORGET = `
local t = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if t and t >= tonumber(ARGV[2]) then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
`;

/** Queues forgotten per sweep at most: each costs two commands; the rest wait for the next sweep. */
const FORGET_PER_SWEEP = 64;

/** Unreadable seen times (not a number, or in the future past this) restart the queue's clock. */
const FUTURE_SLACK_MS = 60_000;

/**
 * How long a durable queue is kept with no member anywhere in the mesh
 * (`durable.queues.inactiveMs`), on the store's side.
 *
 * Every queue of the set `<prefix>queues` has a time in the hash
 * `<prefix>queues:seen`: set when a member registers it, and on every
 * refresh of a node (5 s) for the queues it has members of. A refresh also
 * sweeps: a queue whose time is older than `inactiveMs` leaves the set (its
 * field first, by a script that keeps it when a member marked it since:
 * FORGET), and the nodes stop adding jobs to it. Its jobs stay where they
 * are: a member that subscribes again registers the queue again and gets
 * them. As JetStream's `inactive_threshold` and RabbitMQ's `x-expires`:
 * without it the set only grew, and a client that may subscribe durably
 * could register names until `maxQueues` refused every new queue of the
 * mesh, each also taking a job per matching event for ever.
 *
 * Times are the nodes' clocks: a skew between nodes shortens or lengthens
 * the retention by that much (minutes against a default of 24 h).
 */
export class QueueRetention {
  constructor(
    private readonly redis: RedisClient,
    private readonly set: QueueSet,
    /** ms; 0 keeps every queue for ever. */
    readonly inactiveMs: number,
    /** writeTimeoutMs: each wait on the (timeout-less) producer connection is bounded by it. */
    private readonly deadlineMs: number,
    /** Where a marks' hash of another type, replaced, is told: counted as corrupt store data, logged once a minute. */
    private readonly watch?: { logger: Logger; onCorrupt(): void },
  ) {}

  /**
   * How often a node refreshes its queue list (and marks and sweeps), ms:
   * 5 s, or a quarter of `inactiveMs` when that is shorter (at least 250 ms)
   * so a queue with members is marked several times within its retention.
   */
  get refreshEveryMs(): number {
    return this.inactiveMs > 0 ? Math.min(5000, Math.max(250, Math.floor(this.inactiveMs / 4))) : 5000;
  }

  /**
   * Marks `consumed` (members of the queues with consumers on this node)
   * seen now, forgets the members of `listed` (the set as read) unseen for
   * `inactiveMs`, and returns `listed` without those it forgot. Throws
   * StoreError when the store fails or does not answer in time (the caller
   * keeps what it knows).
   */
  async kept(listed: readonly string[], consumed: readonly string[]): Promise<string[]> {
    const now = Date.now();
    const mark = new Map<string, string>(consumed.map((m) => [m, String(now)]));
    if (this.inactiveMs === 0) {
      if (mark.size > 0) await this.bounded(this.redis.hset(this.set.seenKey, mark), 'the durable queue marks');
      return [...listed];
    }
    let seen: Record<string, string>;
    try {
      seen = await this.bounded(this.redis.hgetall(this.set.seenKey), 'the durable queue marks');
    } catch (e) {
      if (!wrongType(e)) throw e;
      // Another type at the marks' key (Redis is shared): replaced, every queue's clock starts again (it only delays forgetting).
      await this.bounded(this.redis.del(this.set.seenKey), 'the durable queue marks');
      seen = {};
      this.watch?.onCorrupt();
      if (this.watch) throttled(this.watch.logger).warn({ key: this.set.seenKey }, "durable queue marks in redis held another type: replaced, the queues' clocks start again", 'store key corrupt: durable queue marks');
    }
    const cutoff = now - this.inactiveMs;
    const stale: string[] = [];
    for (const m of listed) {
      if (mark.has(m)) continue;
      const t = Number(seen[m]);
      // Never marked (a queue registered before retention existed), or unreadable: its clock starts now.
      if (!Number.isFinite(t) || t > now + FUTURE_SLACK_MS) mark.set(m, String(now));
      else if (t < cutoff) stale.push(m);
    }
    if (mark.size > 0) await this.bounded(this.redis.hset(this.set.seenKey, mark), 'the durable queue marks');
    const listedSet = new Set(listed);
    // Fields of members no longer listed (an operator's SREM, a sweep cut short) go once as old as a stale queue.
    const orphans = Object.keys(seen).filter((m) => !listedSet.has(m) && !mark.has(m) && !(Number(seen[m]) >= cutoff));
    const gone = new Set<string>();
    for (const m of [...stale, ...orphans].slice(0, FORGET_PER_SWEEP)) {
      const forgot = await this.bounded(this.redis.eval(FORGET, 1, this.set.seenKey, m, String(cutoff)) as Promise<number>, 'the durable queue sweep');
      if (forgot === 1 && listedSet.has(m)) {
        await this.bounded(this.redis.srem(this.set.key, m), 'the durable queue sweep');
        gone.add(m);
      }
    }
    if (gone.size > 0) await this.bounded(this.redis.publish(this.set.channel, 'forgotten'), 'the durable queue sweep');
    return listed.filter((m) => !gone.has(m));
  }

  private bounded<T>(op: Promise<T>, what: string): Promise<T> {
    return withinDeadline(op, this.deadlineMs, what);
  }
}

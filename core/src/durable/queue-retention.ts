import type { RedisClient } from './redis-connect.js';
import type { QueueSet } from './queue-set.js';
import { withinDeadline } from './store-deadline.js';
import { wrongType } from './connection-error.js';
import type { Logger } from '../logger.js';
import { throttled } from '../told-recently.js';
import { MARK } from './queue-marks.js';

/**
 * KEYS: the seen hash. ARGV: the cutoff and the future bound (ms, the
 * store's time), then members. Deletes the field of each member marked
 * before the cutoff, unreadably (not a number), or past the future bound,
 * and returns those members; a member marked meanwhile (a member joined
 * since the sweep read the hash) keeps its field. One key: the set is
 * another cluster slot, so the caller removes them from the set after.
 */
const FORGET = `
local cutoff = tonumber(ARGV[1])
local future = tonumber(ARGV[2])
local gone = {}
for i = 3, #ARGV do
  local t = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if t == nil or t < cutoff or t > future then
    redis.call('HDEL', KEYS[1], ARGV[i])
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
`;

/** Queues forgotten per sweep at most (two commands each, in the script); the rest wait for the next sweep. */
const FORGET_PER_SWEEP = 1024;

/** Members a sweep looks at, at most (one script): a set listed longer is swept in turns. */
const SWEEP_AT_MOST = 4096;

/** Marks' fields looked at per refresh for orphans (a hash of a million planted fields takes ~20 min at 5 s). */
const ORPHANS_PER_SWEEP = 4096;

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
 * them (removing them raced a member registering it again: the removal
 * also took the jobs acknowledged meanwhile). As JetStream's `inactive_threshold` and RabbitMQ's `x-expires`:
 * without it the set only grew, and a client that may subscribe durably
 * could register names until `maxQueues` refused every new queue of the
 * mesh, each also taking a job per matching event for ever.
 *
 * Times are the store's (Redis TIME: read by the script that marks, and
 * once per sweep), never a node's: with the nodes' clocks, a node 30 s ahead forgot
 * the queues another node's members were consuming every sweep, and each
 * came back at that node's next refresh with a notice to every node (4,800
 * notices/s with 60 queues in a review).
 *
 * Reads are bounded: the marks of the listed members only, and the rest of
 * the hash a cursor's step per refresh (a hash of 300,000 planted fields
 * read whole cost ~400 MB of node memory and 0.7 s stalls per refresh).
 */
export class QueueRetention {
  /** Where the walk over the marks for orphans stands ('0': start again). */
  private orphanCursor = '0';
  /** Where the next sweep of a set listed longer than SWEEP_AT_MOST starts. */
  private sweepFrom = 0;

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
    let now = consumed.length > 0 ? Number(await this.script(MARK, consumed, 'the durable queue marks')) : NaN;
    if (now === -1) {
      await this.replaceMarks();
      now = NaN;
    }
    if (this.inactiveMs === 0) return [...listed];
    try {
      return await this.sweep(listed, new Set(consumed), Number.isNaN(now) ? await this.storeNow() : now);
    } catch (e) {
      if (!wrongType(e)) throw e;
      await this.replaceMarks();
      return [...listed];
    }
  }

  /** Forgets the members of `listed` (but `mine`) unseen for inactiveMs at the store's time `now`, and orphaned marks. */
  private async sweep(listed: readonly string[], mine: ReadonlySet<string>, now: number): Promise<string[]> {
    const cutoff = now - this.inactiveMs;
    const future = now + FUTURE_SLACK_MS;
    const candidates = listed.filter((m) => !mine.has(m));
    const others = this.inTurn(candidates);
    const times = others.length > 0 ? await this.bounded(this.redis.hmget(this.set.seenKey, ...others), 'the durable queue marks') : [];
    const restart: string[] = [];
    const stale: string[] = [];
    others.forEach((m, i) => {
      const t = Number(times[i] ?? NaN);
      // Never marked (a queue registered before retention existed), or unreadable: its clock starts now.
      if (times[i] === null || !Number.isFinite(t) || t > future) restart.push(m);
      else if (t < cutoff) stale.push(m);
    });
    if (restart.length > 0 && Number(await this.script(MARK, restart, 'the durable queue marks')) === -1) await this.replaceMarks();
    const gone = stale.length > 0 ? await this.forget(stale.slice(0, FORGET_PER_SWEEP), cutoff, future) : [];
    if (gone.length > 0) {
      await this.bounded(this.redis.srem(this.set.key, ...gone), 'the durable queue sweep');
      await this.set.forget(gone).catch(() => {});
      await this.bounded(this.redis.publish(this.set.channel, 'forgotten'), 'the durable queue sweep');
    }
    // Swept whole, every listed member has its mark now: a hash no longer than the list has no orphan to walk for
    // (the walk read every field again, each refresh of every node, what the HMGET had just read).
    const whole = candidates.length <= SWEEP_AT_MOST;
    if (!whole || (await this.bounded(this.redis.hlen(this.set.seenKey), 'the durable queue sweep')) > listed.length - gone.length) {
      await this.orphans(new Set(listed), cutoff, future);
    }
    const forgotten = new Set(gone);
    return listed.filter((m) => !forgotten.has(m));
  }

  /** At most SWEEP_AT_MOST of `members`: a longer list is swept in turns. */
  private inTurn(members: string[]): string[] {
    if (members.length <= SWEEP_AT_MOST) return members;
    const from = this.sweepFrom % members.length;
    this.sweepFrom = from + SWEEP_AT_MOST;
    return members.slice(from, from + SWEEP_AT_MOST).concat(members.slice(0, Math.max(0, from + SWEEP_AT_MOST - members.length)));
  }

  private forget(members: string[], cutoff: number, future: number): Promise<string[]> {
    return this.script(FORGET, [String(cutoff), String(future), ...members], 'the durable queue sweep') as Promise<string[]>;
  }

  /** One step of the walk over the marks: the fields of members not listed (an operator's SREM, a sweep cut short, planted) go once stale, unreadable or in the future. */
  private async orphans(listed: ReadonlySet<string>, cutoff: number, future: number): Promise<void> {
    const [next, kv] = await this.bounded(this.redis.hscan(this.set.seenKey, this.orphanCursor, 'COUNT', ORPHANS_PER_SWEEP), 'the durable queue sweep');
    this.orphanCursor = next;
    const old: string[] = [];
    for (let i = 0; i + 1 < kv.length; i += 2) {
      const t = Number(kv[i + 1]);
      if (!listed.has(kv[i]!) && !(t >= cutoff && t <= future)) old.push(kv[i]!);
    }
    if (old.length > 0) await this.forget(old, cutoff, future);
  }

  /** The store's clock, ms (TIME). */
  private async storeNow(): Promise<number> {
    const [s, us] = await this.bounded(this.redis.time(), 'the durable queue sweep');
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  /** Another type at the marks' key (Redis is shared): replaced; every queue's clock starts again (it only delays forgetting). */
  private async replaceMarks(): Promise<void> {
    await this.bounded(this.redis.del(this.set.seenKey), 'the durable queue marks');
    this.orphanCursor = '0';
    this.watch?.onCorrupt();
    if (this.watch) throttled(this.watch.logger).warn({ key: this.set.seenKey }, "durable queue marks in redis held another type: replaced, the queues' clocks start again", 'store key corrupt: durable queue marks');
  }

  /** `src` run on the marks' hash (its one key), with `args`. */
  private script(src: string, args: readonly string[], what: string): Promise<unknown> {
    return this.bounded(this.redis.eval(src, 1, this.set.seenKey, ...args) as Promise<unknown>, what);
  }

  private bounded<T>(op: Promise<T>, what: string): Promise<T> {
    return withinDeadline(op, this.deadlineMs, what);
  }
}

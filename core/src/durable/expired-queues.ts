import { Queue } from 'bullmq';
import type { RedisClient } from './redis-connect.js';
import { parseQueueMember } from './queue-set.js';
import { queueName } from './queue-names.js';
import { quietConnections } from './bullmq-guard.js';
import { withinDeadline } from './store-deadline.js';
import type { Logger } from '../logger.js';
import { thrownText } from '@meshbus/proto';

/** Queues waiting for their jobs' removal on one node, at most (a sweep forgets at most 1,024). */
const MAX_WAITING = 4096;

/**
 * Removes the jobs of the durable queues this node's retention sweep
 * forgot (queue-retention.ts), once every node has stopped adding to them:
 * `graceMs` after (more than the two refreshes a node keeps enqueuing for a
 * queue gone from the list), unless the queue was registered again
 * meanwhile (listed again, or in the set when looked at just before).
 *
 * As RabbitMQ's `x-expires` deletes a queue with its messages. Kept, the
 * jobs of forgotten queues had no bound: the mesh bounds jobs by queue
 * (`maxJobs`) and queues by `maxQueues`, so each retention period could
 * add `maxQueues × maxJobs` jobs that nothing counted or removed (a review:
 * 6 → 12 → 18 → 30 jobs held against a bound of 6). Only the node whose
 * sweep forgot a queue removes it (the forget script answers one node); one
 * that stops first leaves those jobs in Redis (said in its log).
 */
export class ExpiredQueues {
  /** Forgotten members → when their jobs go (performance.now() ms). */
  private readonly due = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    private readonly setKey: string,
    private readonly bullPrefix: string,
    /** ms after the forgetting. */
    private readonly graceMs: number,
    private readonly deadlineMs: number,
    private readonly logger?: Logger,
  ) {}

  /** Queues (set members) this node's sweep just forgot. */
  forgot(members: readonly string[]): void {
    const at = performance.now() + this.graceMs;
    for (const m of members) {
      if (this.due.size >= MAX_WAITING) return void this.logger?.warn({ queue: m }, 'durable queue forgotten: too many waiting for removal, its jobs stay in redis');
      this.due.set(m, at);
    }
  }

  /**
   * Removes the jobs of the queues due (`listed`: the set as read by this
   * refresh), in the background, one removal at a time (a large queue's
   * takes a while: the refresh does not wait). Errors are logged; a queue is
   * tried once.
   */
  removeDue(listed: ReadonlySet<string>): void {
    const now = performance.now();
    const ready: string[] = [];
    for (const [m, at] of this.due) {
      if (listed.has(m)) this.due.delete(m);
      else if (at <= now) {
        this.due.delete(m);
        ready.push(m);
      }
    }
    for (const m of ready) {
      this.removing = this.removing.then(() => this.remove(m)).catch((e: unknown) => void this.logger?.warn({ queue: m, err: thrownText(e) }, 'durable queue expired: removing its jobs failed, they stay in redis'));
    }
  }

  /** The removals in progress, one after another. */
  private removing: Promise<void> = Promise.resolve();

  /** Resolves once the removals started so far are over (a node's stop). */
  settled(): Promise<void> {
    return this.removing;
  }

  /** How many wait for removal. */
  get waiting(): number {
    return this.due.size;
  }

  private async remove(member: string): Promise<void> {
    const pg = parseQueueMember(member);
    if (pg === undefined) return;
    // Registered again since this refresh read the set: its jobs are its new member's.
    if ((await withinDeadline(this.redis.sismember(this.setKey, member), this.deadlineMs, 'the durable queue expiry')) === 1) return;
    const q = quietConnections(new Queue(queueName(pg[0], pg[1]), { connection: this.redis, prefix: this.bullPrefix }));
    q.on('error', () => {});
    try {
      const c = await withinDeadline(q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused', 'failed', 'completed'), this.deadlineMs, 'the durable queue expiry');
      const jobs = Object.values(c).reduce((a, b) => a + b, 0);
      await q.obliterate({ force: true });
      this.logger?.info({ queue: member, jobs }, 'durable queue expired: no member for queues.inactiveMs, its jobs removed');
    } finally {
      await q.close().catch(() => {});
    }
  }
}

import { Queue, Worker, type Job } from 'bullmq';
import type { RedisClient } from './redis-connect.js';
import { ReplicaWait } from './replica-wait.js';
import { guardWorker, quietConnections } from './bullmq-guard.js';
import type { Logger } from '../logger.js';
import { admitted, type Subscription } from '../subscriber.js';
import { Frame, SessionError, StoreError, thrownText } from '@meshbus/proto';
import { Deliveries, NodeStopping } from './deliveries.js';
import { PendingWrites } from './pending-writes.js';
import { delayedWorker } from './delayed-worker.js';
import { giveBack, givenUp, isOpen, jobFrame, workerEntry, WorkerClosings, type Member, type WorkerEntry } from './queue-worker.js';
import type { DurableMatcher, ResolvedDurable } from './store-config.js';
import { ToldRecently, throttled } from '../told-recently.js';
import type { StoreQuota } from './store-quota.js';
import { StoreKeyConflict, connectionError, storeErr, storeFailure } from './connection-error.js';
import { QueueSet, parseQueueMember, queueMember } from './queue-set.js';
import { QueueRetention } from './queue-retention.js';
import { KnownQueues } from './known-queues.js';
import { DELAYED_DLQ, bullPrefix, delayedJobBytes, delayedJobId, dlqName, queueName, type JobData, type QueueRef } from './queue-names.js';
import { withinDeadline } from './store-deadline.js';
import { bullKeys, explained } from './key-conflict.js';
import { oneAtATime } from './one-at-a-time.js';
import { deadLetterJob, readDeadLetters, type DeadLetter, type DeadLetterStore } from './dead-letters.js';

/**
 * How often one kind of queue or worker error is logged again, ms. BullMQ
 * raises an 'error' per reconnect attempt of each queue's and worker's Redis
 * connection while Redis is down (110 lines in 3 s with three queues).
 */
const ERROR_LOG_EVERY = 5 * 60_000;

/** How long stop() waits for the workers to close, ms: each gives back or fails its jobs (left active: 30 to 60 s lost). */
const STOP_WAIT_MS = 5000;

/**
 * Durable work queues across the mesh.
 *
 * Discovery: the set `<prefix>queues` lists every (pattern, group) ever
 * subscribed durably; a node reads it at start, re-reads it on a pub/sub
 * notice (`<prefix>queues:changed`) and every few seconds. The node where an
 * event is published adds one job per matching queue (so once per event,
 * wherever the consumers are). Jobs wait in Redis while no consumer is online.
 *
 * Consumption: a node with local members of a group runs one BullMQ Worker
 * for it, concurrency = its number of members; each job goes to one free
 * member as a sid-addressed delivery with ACK_REQUESTED and a delivery id in
 * `correlation`. The client's ACK completes the job; NACK, timeout or
 * disconnect fails it: BullMQ retries with exponential backoff and, after
 * `attempts`, the node moves it to the dead-letter queue of the group and
 * publishes it on `_DLQ.<group>`.
 */
export class WorkQueues {
  private readonly queues = new Map<string, Queue>();
  private readonly known: KnownQueues;
  private readonly workers = new Map<string, WorkerEntry<QueueRef>>();
  /** Registrations in flight (addMember): one that left meanwhile is taken out, never added (a closed session's jobs waited ackTimeoutMs each). */
  private readonly joining = new Set<Subscription>();
  /** Workers closing (their last member left, or the node stops): stop() waits for them before the connections go. */
  private readonly closings = new WorkerClosings(() => this.workerConn);
  private readonly deliveries: Deliveries;
  /** Dead letters and quota releases started for jobs settled: stop() waits for them (bounded) before the connections go. */
  private readonly writes = new PendingWrites();
  private refreshTimer: ReturnType<typeof setInterval> | undefined;
  /** One refresh at a time (a notice per queue change of any node, and every 5 s): asked meanwhile, it runs once more after. */
  private readonly refreshSoon = oneAtATime(() => this.refresh().catch((e: unknown) => throttled(this.logger).warn(storeErr(e), 'durable queue refresh failed', undefined, storeFailure(e))));
  private readonly set: QueueSet;
  private readonly retention: QueueRetention;
  private delayed: Queue | undefined;
  private delayedWorker: Worker | undefined;
  private stopped = false;
  /** Queue and worker errors logged recently (failed()). */
  private readonly errorsTold = new ToldRecently(ERROR_LOG_EVERY);
  private readonly replicaWait: ReplicaWait | undefined;
  private readonly dead: DeadLetterStore;

  constructor(
    private readonly cfg: ResolvedDurable,
    /** Commands (SADD, SMEMBERS, PUBLISH) and BullMQ producers. */
    private readonly redis: RedisClient,
    /** Blocking connections for workers are duplicated from this one. */
    private readonly workerConn: RedisClient,
    /** Pub/sub connection for queue-set notices. */
    private readonly sub: RedisClient,
    matcher: DurableMatcher<QueueRef>,
    private readonly logger: Logger,
    /** Publishes an event whose delay is over (on whichever node's worker takes it). */
    private readonly publishDue: (frame: Uint8Array) => Promise<void>,
    /** Publishes a dead letter on `_DLQ.<group>`. */
    private readonly publishDead: (group: string, frame: Uint8Array, error: string) => void,
    /** Counts a job read back from Redis that cannot be decoded (skipped). */
    private readonly onCorrupt: () => void = () => {},
    /** Mesh-wide bound of the delayed publishes waiting (absent: unbounded, for tools). */
    private readonly quota?: StoreQuota,
    /** Counts a dead letter stored, by kind. */
    onDeadLetter: (kind: 'queue' | 'delayed') => void = () => {},
    /** True from the start of the node's stop (shutdown or close), before any session is told GOODBYE or cut. */
    private readonly nodeStopping: () => boolean = () => false,
    /** The queue named so is forgotten (its job count can go). */
    private readonly onForgotten: (name: string) => void = () => {},
  ) {
    this.dead = { queue: (n) => this.queue(n), maxJobs: cfg.queueLimits.maxJobs, bounded: (op, what) => this.bounded(op, what), logger, onCorrupt, onStored: onDeadLetter, stopping: () => this.stopped };
    this.deliveries = new Deliveries(cfg.ackTimeoutMs);
    this.set = new QueueSet(redis, `${cfg.prefix}queues`, `${cfg.prefix}queues:changed`, cfg.writeTimeoutMs);
    this.retention = new QueueRetention(redis, this.set, cfg.queueInactiveMs, cfg.writeTimeoutMs, { logger, onCorrupt });
    this.known = new KnownQueues(cfg.queueLimits, matcher, (ref) => this.forgotten(ref));
    if (cfg.waitReplicas > 0) this.replicaWait = new ReplicaWait(redis, cfg.waitReplicas, cfg.waitTimeoutMs, cfg.writeTimeoutMs);
  }

  private get bullPrefix(): string {
    return bullPrefix(this.cfg.prefix);
  }
  /** `op` on the producer connection, which has no commandTimeout: bounded by writeTimeoutMs (store-deadline.ts). */
  private bounded<T>(op: Promise<T>, what: string): Promise<T> {
    return withinDeadline(op, this.cfg.writeTimeoutMs, what);
  }

  /**
   * With `waitReplicas`, waits until that many replicas have the jobs this
   * node wrote (WAIT on the producer connection, routed to the BullMQ slot);
   * throws StoreError MB_ERR_STORE_UNAVAILABLE when fewer confirm in time.
   */
  private async replicated(): Promise<void> {
    // Every BullMQ key is in one slot: one group.
    const unconfirmed = await this.replicaWait?.unconfirmed('bull', `${this.bullPrefix}:wait`, 'job');
    if (unconfirmed) throw new StoreError('MB_ERR_STORE_UNAVAILABLE', unconfirmed);
  }

  /**
   * Subscribes to the queue-set notices, reads the set and starts the
   * delayed-publish worker. Called by Durability once its connections are
   * ready (the SUBSCRIBE waits in the pub/sub connection's offline queue
   * otherwise); a stop() meanwhile ends it without starting anything.
   */
  async start(): Promise<void> {
    this.sub.on('message', (ch: string) => {
      if (ch === this.set.channel) this.refreshLogged();
    });
    await this.sub.subscribe(this.set.channel).catch((e: unknown) => this.logger.warn(storeErr(e), 'queue notices unavailable'));
    if (this.stopped) return;
    await this.refresh();
    if (this.stopped) return;
    this.refreshTimer = setInterval(() => this.refreshLogged(), this.retention.refreshEveryMs);
    this.refreshTimer.unref();
    this.delayed = quietConnections(new Queue('delayed', { connection: this.redis, prefix: this.bullPrefix }));
    this.delayedWorker = delayedWorker({
      conn: this.workerConn,
      bullPrefix: this.bullPrefix,
      logger: this.logger,
      publishDue: this.publishDue,
      onCorrupt: this.onCorrupt,
      done: (job, gaveUp) => this.releaseDelayed(job, gaveUp),
      onError: (e) => this.failed('delayed worker error', undefined, e),
    });
  }

  /**
   * A queue's or worker's 'error' event, logged once per kind every
   * ERROR_LOG_EVERY: a lost connection is one kind for all of them (said once
   * per outage, not per reconnect attempt of each), another error one kind per
   * message.
   */
  private failed(what: string, queue: string | undefined, e: unknown): void {
    const lost = connectionError(e);
    if (!this.errorsTold.due(lost ? 'connection' : `${what} ${thrownText(e)}`)) return;
    if (lost) this.logger.warn({ queue, ...storeErr(e) }, 'durable queues lost their Redis connection: retrying (said again at most every 5 min)');
    else this.logger.warn({ queue, ...storeErr(e) }, what);
  }

  private refreshLogged(): void {
    // A consumer that left its queue with a job in hand, then closed its connection.
    this.deliveries.disconnected((m) => !isOpen(m.sub.owner), this.stopped || this.nodeStopping());
    if (!this.stopped) this.refreshSoon();
  }

  /** Re-reads the queue set (invalid members skipped), marks the queues consumed here, sweeps those unused past `queues.inactiveMs` (queue-retention.ts). */
  async refresh(): Promise<void> {
    let listed: string[];
    const consumed = [...this.workers.values()].map((w) => queueMember(w.ref.pattern, w.ref.group));
    try {
      listed = await this.set.list();
    } catch (e) {
      // Redis down: said as the outage. A set of another type is the operator's to remove: said so, every 5 min.
      if (e instanceof StoreKeyConflict) this.failed('durable queue set unusable: events on durable queues are not enqueued by this node', undefined, e);
      return;
    }
    // A failed sweep forgets nothing this time: the queues are learned as listed.
    const members = await this.retention.kept(listed, consumed).catch((e: unknown) => {
      this.failed('durable queue retention sweep failed', undefined, e);
      return listed;
    });
    const pairs = members.map(parseQueueMember).filter((pg) => pg !== undefined);
    // Who made each queue, mesh-wide (maxPerHost: counted by one node alone, a host spread over N nodes made N shares).
    this.known.owners(await this.set.owners(members).catch(() => undefined));
    const registering = new Set([...this.joining].map((s) => queueName(s.pattern, s.queue!)));
    // Two refreshes of grace: the nodes consuming a queue a store lost write it back within one.
    this.known.listed(pairs, (name) => this.workers.has(name) || registering.has(name), 2 * this.retention.refreshEveryMs);
    await this.set.repair(consumed, new Set(members));
  }

  /**
   * A forgotten queue's BullMQ object is closed: each keeps three listeners
   * on the shared producer connection, and with queues forgotten and new
   * ones made the node held one for every queue it ever added a job to.
   */
  private forgotten(ref: QueueRef): void {
    // Its group's dead-letter queue too (one per group name), unless another queue known has the group.
    for (const name of this.known.hasGroup(ref.group) ? [ref.name] : [ref.name, dlqName(ref.group)]) {
      this.queues.get(name)?.close().catch((e: unknown) => this.failed('queue close failed', name, e));
      this.queues.delete(name);
    }
    this.onForgotten(ref.name);
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = quietConnections(new Queue(name, { connection: this.redis, prefix: this.bullPrefix }));
      q.on('error', (e) => this.failed('queue error', name, e));
      this.queues.set(name, q);
    }
    return q;
  }

  /**
   * Throws StoreError MB_ERR_STORE_UNAVAILABLE unless the producer connection
   * is ready and the queues started: a BullMQ Queue made while Redis is down
   * waits for it (waitUntilReady) before any command, so a publish would hang
   * instead of being refused like every other durable write meanwhile.
   */
  private usable(): void {
    if (this.redis.status !== 'ready' || this.delayed === undefined || this.stopped) {
      throw new StoreError('MB_ERR_STORE_UNAVAILABLE', 'redis not reachable: durable queues are not available');
    }
  }

  /**
   * Adds one job per matching queue; resolves once Redis has them all.
   * When some adds fail (a queue's keys of the wrong type, Redis errors),
   * the jobs added to the other queues are removed before the publish is
   * refused: the publisher's retry added them again each time (200 NACKed
   * publishes left 200 jobs in each of 15 good queues). Not at the deadline:
   * the adds still waiting may yet be applied (SPEC 15.2).
   */
  async enqueue(refs: QueueRef[], topic: string, frame: Uint8Array, delay = 0): Promise<void> {
    this.usable();
    const data: JobData = { f: Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('base64'), topic };
    const adds = refs.map((ref) =>
      this.queue(ref.name).add('event', data, {
        attempts: this.cfg.attempts,
        backoff: { type: 'exponential', delay: this.cfg.backoffMs },
        delay: delay > 0 ? delay : undefined,
        removeOnComplete: true,
        // Kept when given up until its dead letter is written (deadLetterJob removes it then).
        removeOnFail: false,
      }),
    );
    const done = await this.bounded(Promise.allSettled(adds), 'the queue job add');
    const failed = done.findIndex((d) => d.status === 'rejected');
    if (failed >= 0) {
      const added = done.flatMap((d) => (d.status === 'fulfilled' ? [d.value] : []));
      await this.bounded(Promise.allSettled(added.map((job) => job.remove())), 'the removal of a refused publish\'s jobs').catch(() => {});
      return this.rethrown((done[failed] as PromiseRejectedResult).reason, refs.map((r) => r.name));
    }
    await this.replicated();
  }

  /**
   * A publish with a delay: a BullMQ delayed job, published when due. Room
   * in the mesh's delayed quota is reserved first (StoreError
   * MB_ERR_STORE_FULL past it) and given back if the job cannot be added
   * or is given up (then removed: kept as failed, it held its event for ever).
   */
  async schedule(topic: string, frame: Uint8Array, delay: number): Promise<void> {
    this.usable();
    const size = frame.byteLength;
    await this.quota?.reserveDelayed(size);
    const data: JobData = { f: Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('base64'), topic, b: size };
    try {
      const add = this.delayed!.add('publish', data, { jobId: delayedJobId(size), delay, attempts: this.cfg.attempts, backoff: { type: 'exponential', delay: this.cfg.backoffMs }, removeOnComplete: true, removeOnFail: false });
      await this.bounded(add, 'the delayed publish');
    } catch (e) {
      this.quota?.releaseDelayed(size).catch(() => {});
      return this.rethrown(e, ['delayed']);
    }
    await this.replicated();
  }

  /**
   * Rethrows a failed job add or count, as StoreKeyConflict when BullMQ's keys of one of the queues `names`
   * hold another type (the key named to the log only).
   */
  private async rethrown(e: unknown, names: string[]): Promise<never> {
    const keys = names.slice(0, 16).flatMap((n) => bullKeys(this.bullPrefix, n));
    throw await explained(e, this.redis, keys, "a durable queue's own data (BullMQ's)", this.cfg.writeTimeoutMs);
  }

  /**
   * A delayed job is no longer waiting: gives back its reservation. Best
   * effort, never failing the job (that would publish it again); a lost
   * release leaves the count high by one until the count is reset. Its
   * size comes from its id, readable when its data is not (delayedJobBytes). One
   * given up (`gaveUp`) is kept as a dead letter (DELAYED_DLQ, bounded at
   * maxJobs like a group's): the node acknowledged it, and before it was
   * only logged, the event lost.
   */
  private releaseDelayed(job: Job<JobData>, gaveUp?: Error): void {
    const release = (): void => void this.writes.track(this.quota?.releaseDelayed(delayedJobBytes(job)).catch((e: unknown) => this.failed('delayed quota release failed', undefined, e)) ?? Promise.resolve());
    if (!gaveUp) return release();
    throttled(this.logger).warn({ queue: 'delayed', attempts: job.attemptsMade, err: gaveUp.message }, 'delayed publish given up: dead-lettered');
    void this.writes.track(deadLetterJob(this.dead, DELAYED_DLQ, 'delayed', job, gaveUp, {}).finally(release));
  }

  /**
   * Throws SessionError MB_ERR_TOO_MANY_SUBSCRIPTIONS when (pattern, group)
   * is a queue the node does not know and it already knows `maxQueues`, or
   * `host` made `maxPerHost` of them (known-queues.ts).
   */
  admit(pattern: string, group: string, host: string | undefined): void {
    this.known.admit(pattern, group, host);
  }

  /** A local client subscribed durably to (pattern, group): register the queue and consume it here. */
  async addMember(sub: Subscription): Promise<void> {
    const group = sub.queue!;
    const ref = this.known.learn(sub.pattern, group, sub.owner.host);
    this.joining.add(sub);
    try {
      // Bounded: a silent Redis held it for ever (the SUB never joined, never reported, never retried).
      await this.set.add(queueMember(sub.pattern, group), ref.name, 'the durable queue registration', sub.owner.host);
    } catch (e) {
      this.joining.delete(sub);
      throw e;
    }
    // Left (UNSUB, disconnect) while Redis answered: removeMember took it out of `joining`.
    if (!this.joining.delete(sub) || this.stopped) return;
    let w = this.workers.get(ref.name);
    if (!w) {
      w = workerEntry(ref, (e) => this.newWorker(e));
      this.workers.set(ref.name, w);
    }
    const allBusy = w.members.length > 0 && w.members.every((m) => m.busy);
    w.members.push({ sub, busy: false });
    if (allBusy) {
      // BullMQ reads a raised concurrency only when one of its slots frees: the new member would get
      // nothing until a job in progress ends. A fresh worker takes the slots; the old one finishes and closes.
      this.closings.close(w.worker);
      w.worker = this.newWorker(w);
    } else w.worker.concurrency = w.members.length;
  }

  private newWorker(e: WorkerEntry<QueueRef>): Worker {
    const ref = e.ref;
    const worker = guardWorker(
      new Worker(ref.name, (job: Job<JobData>, token?: string) => this.process(e, job, token), {
        connection: this.workerConn,
        prefix: this.bullPrefix,
        concurrency: Math.max(1, e.members.length),
      }),
    );
    worker.on('failed', (job, err) => {
      if (job && givenUp(job, err)) {
        void this.writes.track(this.deadLetter(ref, job as Job<JobData>, err).catch((x: unknown) => throttled(this.logger).error({ queue: ref.name, ...storeErr(x) }, 'dead-lettering failed', undefined, storeFailure(x))));
      }
    });
    worker.on('error', (x) => this.failed('worker error', ref.name, x));
    return worker;
  }

  /** A local member left: its in-flight delivery fails (retried elsewhere); the worker stops with the last member. */
  removeMember(sub: Subscription): void {
    if (this.joining.delete(sub)) return;
    const name = queueName(sub.pattern, sub.queue!);
    const w = this.workers.get(name);
    if (!w) return;
    const i = w.members.findIndex((m) => m.sub === sub);
    if (i < 0) return;
    w.members.splice(i, 1);
    for (const wake of w.freed.splice(0)) wake();
    // UNSUB, or `max` reached as the job was delivered, on a connection that stays: the consumer
    // still handles and ACKs what it was given (failing it made every last job of a `max`
    // subscription a failed attempt: redelivered, or dead-lettered with attempts 1). A closed
    // connection cannot ACK: its deliveries end now (refreshLogged() finds those left over), as a
    // failed attempt unless the node is stopping (the consumer left because of it).
    if (!isOpen(sub.owner)) this.deliveries.disconnected((m) => m.sub.owner === sub.owner, this.stopped || this.nodeStopping());
    if (w.members.length === 0) {
      this.workers.delete(name);
      this.closings.close(w.worker, w.closingNow);
    } else {
      w.worker.concurrency = w.members.length;
    }
  }

  private async process(w: WorkerEntry<QueueRef>, job: Job<JobData>, token: string | undefined): Promise<void> {
    // The job comes back from Redis: untrusted. An unreadable one is dropped (retrying cannot fix it), counted and logged.
    let frame: Uint8Array;
    try {
      frame = jobFrame(job.data);
    } catch (e) {
      this.onCorrupt();
      throttled(this.logger).warn({ queue: w.ref.name, job: job.id, err: String((e as Error).message) }, 'corrupt durable queue job dropped');
      return;
    }
    let member: Member | undefined;
    const probe = new Frame(frame, 0, frame.length);
    for (;;) {
      const n = w.members.length;
      // The node stops: the worker is about to close, its members' sessions are gone.
      if (n === 0 || this.stopped) return giveBack(w.closing, job, token, (e) => this.failed('job give-back failed', w.ref.name, e));
      let fit = 0;
      for (let k = 0; k < n && !member; k++) {
        const m = w.members[(w.rr++ & 0x7fffffff) % n]!;
        // Only a member whose token lets it receive the job's topic (Subscriber.admits): one that may not was
        // handed the job, dropped it unacked, and the job was dead-lettered onto `_DLQ.<group>`.
        if (!admitted(m.sub.owner, probe)) continue;
        fit++;
        if (!m.busy) member = m;
      }
      if (member) break;
      // A failed attempt, retried as the queue backs off (a member that may receive it can join), then dead-lettered.
      if (fit === 0) throw new SessionError('MB_ERR_PERMISSION_DENIED', `no member of the group may receive ${probe.topic}`);
      // Every member busy (a worker replaced for a joining member takes slots the old one still holds): wait for one.
      await new Promise<void>((r) => w.freed.push(r));
    }
    member.busy = true;
    try {
      await this.deliveries.deliver(member, frame);
    } catch (e) {
      // Cut by this node's stop, not the consumer's failure: back to the queue, no attempt counted (SPEC 15.5).
      if (e instanceof NodeStopping) await giveBack(w.closing, job, token, (x) => this.failed('job give-back failed', w.ref.name, x));
      throw e;
    } finally {
      member.busy = false;
      w.freed.shift()?.();
    }
  }

  /** ACK/NACK from a client for delivery `id`; false when it names no delivery of this node. */
  settle(owner: unknown, id: number, ok: boolean, reason: string): boolean {
    return this.deliveries.settle(owner, id, ok, reason);
  }

  private async deadLetter(ref: QueueRef, job: Job<JobData>, err: Error): Promise<void> {
    const frame = await deadLetterJob(this.dead, dlqName(ref.group), 'queue', job, err, { pattern: ref.pattern, group: ref.group });
    if (frame) this.publishDead(ref.group, frame, err.message);
  }

  /** Jobs waiting in the dead-letter queue of `group`, or without one the delayed publishes given up (oldest first). */
  async deadLetters(group?: string): Promise<DeadLetter[]> {
    this.usable();
    return readDeadLetters(this.dead, group === undefined ? DELAYED_DLQ : dlqName(group));
  }

  /** Jobs not yet done for (pattern, group). */
  backlog(pattern: string, group: string): Promise<number> {
    return this.jobsNotDone(queueName(pattern, group));
  }

  /** Jobs not yet done in the queue named `name` (waiting, active, delayed, prioritized, paused): what `queues.maxJobs` bounds. */
  async jobsNotDone(name: string): Promise<number> {
    this.usable();
    const c = await this.bounded(this.queue(name).getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused'), 'the job count').catch((e: unknown) => this.rethrown(e, [name]));
    return Object.values(c).reduce((a, b) => a + b, 0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.deliveries.stopAll();
    for (const w of this.workers.values()) {
      for (const wake of w.freed.splice(0)) wake();
      this.closings.close(w.worker, w.closingNow);
    }
    this.workers.clear();
    if (this.delayedWorker) this.closings.close(this.delayedWorker);
    // Without Redis nothing can be moved: no wait, and none once it is lost (the closes go on until the connections are quit).
    await this.closings.settled(this.workerConn.status === 'ready' ? STOP_WAIT_MS : 0);
    // The dead letters (and quota releases) of the jobs the workers settled last: written before the connections go.
    await this.writes.settled(this.redis.status === 'ready' ? STOP_WAIT_MS : 0, this.redis);
    const closing: Array<Promise<unknown>> = [];
    for (const q of this.queues.values()) closing.push(q.close());
    if (this.delayed) closing.push(this.delayed.close());
    await Promise.allSettled(closing);
    this.workers.clear();
  }
}


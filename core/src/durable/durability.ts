import type { RedisOptions } from 'ioredis';
import { errorFrame, Frame, FrameType, SessionError, StoreError, decodeError, encodeBody, encodeFrame, copyBytes, hasWildcard, type PubAckBody, type SubBody } from '@meshbus/proto';
import type { ExtensionHost, ExtensionPublisher, ExtensionSession, NodeExtension } from '../node-extension.js';
import type { Subscription } from '../subscriber.js';
import { MAX_IN_FLIGHT, PAUSE_IN_FLIGHT, RESUME_IN_FLIGHT, StoreGate } from './store-gate.js';
import { AnswersOwed } from './answers-owed.js';
import { refusal, subAckFrame, withPosition } from './frames.js';
import { storeCode, storeErr, storeFailure } from './connection-error.js';
import { HistoryStore, STORED_OVERHEAD } from './history-store.js';
import { ReadGate, sendLatest } from './latest-value.js';
import { Sequencer, type SequencedOwner } from './recovery.js';
import { DurableMatcher, type ResolvedDurable, type TopicDurability } from './store-config.js';
import { WorkQueues } from './work-queue.js';
import { MemberRetry } from './member-retry.js';
import type { QueueRef } from './queue-names.js';
import { ReplaySlots } from './replay-slots.js';
import { readStoredFrame } from './stored-frame.js';
import { DURABLE_FEATURES } from './durability-off.js';
import { closeConnection, commandsWaiting, connectRedis, firstFailure, guardDatabase, isCluster, refusedDatabaseGuard, probeCluster, untilReady, type RedisClient } from './redis-connect.js';
import { ReplicaWait } from './replica-wait.js';
import { StoreQuota } from './store-quota.js';
import { JobQuota } from './job-quota.js';
import { ToldRecently, throttled } from '../told-recently.js';
import { redactUrl as redact } from './redis-target.js';
import { publishDeadLetter } from './dead-letters.js';

export { DURABLE_FEATURES, logDurabilityOff, refuseWithoutRedis } from './durability-off.js';

/** A client connection as durability sees it (the seam's ExtensionSession). */
export type DurableSession = ExtensionSession;
/** What durability needs from its node (the seam's ExtensionHost). */
export type DurableHost = ExtensionHost;

function sequencedOwner(s: DurableSession): SequencedOwner {
  return {
    deliver: (f, sid) => s.deliver(f, sid),
    sendSubAck: (sid, body) => s.send(subAckFrame(sid, body)),
    // Through the ordinary queue (not urgent): the notice stays in order with the deliveries around it.
    notice: (sid, code, message) => s.send(errorFrame(code, sid, message)),
    addWaiter: (w) => s.addWaiter(w),
    reserve: (size) => s.reserve(size),
    unreserve: (size) => s.unreserve(size),
    get congested() {
      return s.congested;
    },
    get isOpen() {
      return s.isOpen;
    },
  };
}

type Publisher = ExtensionPublisher;

/** How often a refusal by a store quota is logged again per rule/quota, ms: a publisher past a quota can make one per event. */
const FULL_LOG_EVERY = 60_000;

/**
 * Everything Redis-backed on one node: durable publishes (history, latest
 * value, work-queue jobs, delayed publish), SUB `since` recovery, latest
 * values for new subscribers and durable queue consumers. The node calls it
 * only for topics that match a durable rule or queue (`match`), so plain
 * events pay one cached lookup.
 */
export class Durability implements NodeExtension<TopicDurability<QueueRef>> {
  readonly matcher: DurableMatcher<QueueRef>;
  private history!: HistoryStore;
  /** WAIT for `waitReplicas` replicas after history writes (cfg.waitReplicas > 0). */
  private replicaWait: ReplicaWait | undefined;
  private clustered = false;
  private work!: WorkQueues;
  private quota!: StoreQuota;
  private jobs!: JobQuota;
  private readonly fullTold = new ToldRecently(FULL_LOG_EVERY);
  private readonly conns: RedisClient[] = [];
  private readonly probes: Array<() => void> = [];
  private readonly sequencers = new Map<Subscription, Sequencer>();
  private stopping = false;
  /** The background start of the connections and queues (bringUp); resolves true once durable features are up. */
  private bringingUp: Promise<boolean> | undefined;
  /** A database the server lacks (`--redis redis://host/99`, 16 there): each connection dropped as it is refused, said once. */
  private readonly refusedDb = refusedDatabaseGuard((err) => this.host.logger.error({ redis: redact(this.cfg.redis), err }, 'redis refused the database of --redis (SELECT): durable features stay off (durable publishes refused) until the node restarts with one it may use'));
  /** start() said Redis was not reachable: bringUp says when it is. */
  private unreachableSaid = false;
  /** Resolves when stop() begins: ends a bring-up still waiting for Redis (a disconnect() between reconnect attempts emits no 'end'). */
  private readonly stopped: Promise<void>;
  private stopNow!: () => void;
  /** Durable writes sent to Redis and not yet answered. */
  private inFlight = 0;
  /** The connections durable writes go out on (commands, BullMQ producers). */
  private writers: RedisClient[] = [];
  private readonly gate = new StoreGate();
  /** Acked publishes whose ACK/NACK is still to come, per publisher: a drain's GOODBYE waits for them (answersOwed). */
  private readonly answers = new AnswersOwed();
  private readonly replays: ReplaySlots;
  private readonly latestReads: ReadGate; // a literal SUB's latest reads in flight: as many as replays (replay.perNode)
  /** Durable queue memberships, per connection and per node (each distinct queue is a Redis connection). */
  private readonly queueSlots: ReplaySlots;
  private readonly queueReleases = new Map<Subscription, () => void>();
  /** Due delayed publishes not delivered yet (publishStored): one that fails after its delivery is not retried. */
  private readonly dueUndelivered = new WeakSet<Uint8Array>();
  /** Durable queue members Redis did not take (an outage): joined when it does. */
  private readonly memberRetry = new MemberRetry(
    (sub) => this.work.addMember(sub),
    (sub) => this.queueReleases.has(sub), // unsubscribed() (UNSUB, a closed session) deletes it
    (sub) => this.host.logger.info({ pattern: sub.pattern, group: sub.queue }, 'durable queue member joined after redis came back'),
  );

  /** `cfg` from resolveDurable (store-config.ts), which the node runs at construction so a bad option fails early. */
  constructor(
    private readonly host: DurableHost,
    readonly cfg: ResolvedDurable,
  ) {
    this.matcher = new DurableMatcher<QueueRef>(cfg.topics);
    this.stopped = new Promise<void>((r) => (this.stopNow = r));
    this.replays = new ReplaySlots(cfg.replay.perConnection, cfg.replay.perNode);
    this.latestReads = new ReadGate(cfg.replay.perNode);
    this.queueSlots = new ReplaySlots(cfg.queueLimits.perConnection, cfg.queueLimits.perNode, {
      code: 'MB_ERR_TOO_MANY_SUBSCRIPTIONS',
      what: 'durable queue subscriptions',
      hint: 'unsubscribe one first',
    });
  }

  private connect(extra: RedisOptions): RedisClient {
    const r = connectRedis(this.cfg.target, extra);
    guardDatabase(r, this.refusedDb); // other errors: reported through failed commands and the 'ready'/'end' log lines
    this.conns.push(r);
    this.probes.push(probeCluster(r));
    return r;
  }

  async start(): Promise<void> {
    const log = this.host.logger;
    // Writes fail fast instead of waiting in an offline queue: a publish is
    // acknowledged only when Redis answered, and a NACKed one is never
    // written later by a resend after a reconnect.
    const cmd = this.connect({ enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: this.cfg.writeTimeoutMs });
    const bull = this.connect({ enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    this.writers = [cmd, bull];
    bull.on('ready', () => this.memberRetry.retryNow());
    const workers = this.connect({ maxRetriesPerRequest: null });
    const sub = this.connect({ maxRetriesPerRequest: null });
    let wasReady = false;
    const up = this.host.stats.store;
    up.redisUp = 0;
    cmd.on('ready', () => {
      up.redisUp = 1;
      if (wasReady) log.info({ redis: redact(this.cfg.redis) }, 'redis reconnected');
      wasReady = true;
    });
    cmd.on('close', () => {
      // Said when the connection that was up is lost, not at each failed reconnect attempt after (each closes too).
      if (up.redisUp === 1 && !this.stopping) log.warn({ redis: redact(this.cfg.redis) }, 'redis connection lost: durable publishes are refused until it is back');
      up.redisUp = 0;
    });
    this.history = new HistoryStore(cmd, this.cfg.prefix, { ...this.cfg.replay, maxEntryBytes: this.cfg.quota.maxEventBytes + STORED_OVERHEAD }, this.host);
    this.quota = new StoreQuota(cmd, this.cfg, this.host.stats.store.full, this.host, (t) => this.history.metaKey(t));
    this.jobs = new JobQuota(this.cfg.queueLimits.maxJobs, (name) => this.work.jobsNotDone(name), this.host.stats.store.full);
    if (this.cfg.waitReplicas > 0) this.replicaWait = new ReplicaWait(cmd, this.cfg.waitReplicas, this.cfg.waitTimeoutMs, this.cfg.writeTimeoutMs);
    this.clustered = isCluster(cmd);
    this.work = new WorkQueues(
      this.cfg, bull, workers, sub, this.matcher, log,
      (f) => this.publishStored(f),
      (group, f, error) => publishDeadLetter(this.host, group, f, error),
      () => this.host.stats.store.corrupt++,
      this.quota,
      (kind) => this.host.stats.store.deadLetters[kind]++,
      () => this.host.draining,
      (name) => this.jobs.forget(name),
    );
    // Start-up never waits for Redis (meshbus runs without it): the connections
    // come up in the background and the queues start once they are ready,
    // whenever that is. start() only gives a reachable Redis a moment, so that
    // a node whose Redis answers is fully durable when listen() returns; an
    // unreachable one (refused, or silent for 3 s) is said and left behind.
    // Before, the queue set's SUBSCRIBE waited (offline queue) for Redis for
    // ever: the rest of the node never opened and signals went unanswered.
    this.bringingUp = this.bringUp();
    const failed = firstFailure(cmd, 3000);
    const ready = await Promise.race([this.bringingUp, failed.promise]);
    failed.cancel();
    if (!ready && !this.stopping) {
      this.unreachableSaid = true;
      log.warn({ redis: redact(this.cfg.redis) }, 'redis not reachable yet: durable features wait for it (publishes to durable topics are refused meanwhile)');
    }
    log.info(
      { durability: 'on', redis: redact(this.cfg.redis), prefix: this.cfg.prefix, topics: this.cfg.topics.map((t) => t.pattern), features: DURABLE_FEATURES },
      'durability on',
    );
  }

  /**
   * Waits until every connection is ready, then starts the queues (queue set,
   * its notices, delayed publishes). Each connection is used only once ready:
   * a SUBSCRIBE sent while ioredis's ready check is in flight fails that check
   * (subscriber mode), ioredis reconnects, and a stop() in that window left
   * its disconnect timer holding the process open after close(). Resolves
   * true once up, false when the node stopped first; never rejects.
   */
  private async bringUp(): Promise<boolean> {
    const all = await Promise.all(this.conns.map((c) => untilReady(c, this.stopped)));
    if (this.stopping || !all.every(Boolean)) return false;
    try {
      await this.work.start();
    } catch (e) {
      this.host.logger.warn(storeErr(e), 'durable queues did not start');
      return false;
    }
    if (this.stopping) return false;
    if (this.unreachableSaid) this.host.logger.info({ redis: redact(this.cfg.redis) }, 'redis reachable: durable features available');
    return true;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stopNow();
    for (const s of this.sequencers.values()) s.cancel();
    this.sequencers.clear();
    this.memberRetry.stop();
    for (const stop of this.probes) stop();
    await this.work?.stop();
    await Promise.allSettled(this.conns.map((c) => closeConnection(c)));
    // Not awaited: a bring-up caught in the queues' start (Redis lost right after it was
    // ready) may wait on a command that never settles; WorkQueues.start() starts nothing
    // once stopped, and stopNow() ended its wait for the connections.
  }

  /** What is durable about a published frame's topic; null for plain events (cached per topic). */
  match(f: Frame): TopicDurability<QueueRef> | null {
    if (f.type !== FrameType.PUB) return null;
    return this.matcher.forFrame(f);
  }

  // ---------------------------------------------------------------- publish

  /**
   * A PUB on a durable topic, already stamped. With a history/latest rule the
   * event is stored first and delivered (with its position) only once Redis
   * has it; then work-queue jobs are added; then the publisher gets its ACK
   * (with the position) or a NACK MB_ERR_STORE_UNAVAILABLE.
   */
  publish(f: Frame, d: TopicDurability<QueueRef>, from: Publisher): void {
    const ack = f.ackRequested ? f.correlation : -1;
    // Redis is far behind: refuse rather than hold events in memory without bound. A write NACKed at its
    // deadline is no longer in flight, but its command still waits in the client: a silent Redis and one
    // publisher queued one per publish, unbounded (3,000 of 64 KB: 190 MB), with inFlight back at 0.
    const waiting = this.waiting();
    if (waiting >= MAX_IN_FLIGHT) {
      this.host.stats.dropped.storeBacklog++;
      from?.send?.(refusal(ack, f.correlation, `${waiting} durable writes already waiting for Redis`));
      return;
    }
    try {
      this.quota.checkSize(f.payloadLen);
    } catch (e) {
      this.refuseFull(d, e as StoreError, ack, f.correlation, from);
      return;
    }
    let delay = 0;
    if (f.extLen > 0) {
      try {
        delay = f.ext?.delay ?? 0;
      } catch {
        delay = 0;
      }
    }
    // The frame is a view of the received chunk: keep a copy across the await (not Buffer#slice, a view).
    const bytes = copyBytes(f.bytes);
    const t0 = performance.now();
    const done = delay > 0 ? this.work.schedule(d.topic, bytes, delay).then(() => undefined) : this.store(bytes, d, from);
    this.host.stats.store.writesPending = ++this.inFlight;
    // Past the high mark, the publisher waits (flow control) until Redis catches up.
    if (this.inFlight >= PAUSE_IN_FLIGHT && from) from.blockOn(this.gate);
    const settled = (): void => {
      this.host.stats.store.writesPending = --this.inFlight;
      this.host.timings.durableWrite.observe((performance.now() - t0) / 1000);
      if (this.inFlight <= RESUME_IN_FLIGHT) this.gate.release();
    };
    // then(settled, settled), not finally(): finally() would make a second promise whose rejection nobody handles.
    done.then(settled, settled);
    done.then(
      (pos) => {
        if (ack >= 0) from?.send?.(encodeFrame({ type: FrameType.ACK, correlation: ack, payload: pos ? encodeBody(pos) : undefined }));
      },
      (e: unknown) => {
        if ((e as StoreError | undefined)?.code === 'MB_ERR_STORE_FULL') return this.refuseFull(d, e as StoreError, ack, f.correlation, from);
        // One line per kind a minute: a silent Redis failed every publish (48,000 lines in 24 s from one publisher).
        throttled(this.host.logger).warn({ topic: d.topic, ...storeErr(e) }, 'durable publish failed', undefined, storeFailure(e));
        from?.send?.(refusal(ack, f.correlation, storeFailure(e), storeCode(e)));
      },
    );
    // After the answer above went out (callbacks run in the order they were added).
    if (ack >= 0 && from) this.answers.owe(from, done);
  }

  readonly answersOwed = (from: object): Promise<void> | undefined => this.answers.settled(from);

  /**
   * Commands waiting for Redis: durable writes in flight, or every command
   * the write connections hold unanswered (reads too), whichever is more.
   * Writes, history replays and latest-value reads are refused at
   * MAX_IN_FLIGHT: a silent Redis otherwise queued one command per publish or
   * per SUB for as long as it was silent.
   */
  private waiting(): number {
    return Math.max(this.inFlight, this.writers.reduce((n, c) => n + commandsWaiting(c), 0));
  }

  /** A publish past a store quota: neither stored nor delivered; NACK/ERROR MB_ERR_STORE_FULL, logged once a minute per rule. */
  private refuseFull(d: TopicDurability<QueueRef>, e: StoreError, ack: number, correlation: number, from: Publisher): void {
    const rule = d.rule?.pattern ?? '';
    if (this.fullTold.due(rule)) this.host.logger.warn({ topic: d.topic, rule, queues: d.queues.map((q) => `${q.pattern} ${q.group}`), err: e.message }, 'durable publish refused: store quota reached (said again at most once a minute per rule)');
    from?.send?.(refusal(ack, correlation, e.message.replace(/^durable store quota reached: /, ''), 'MB_ERR_STORE_FULL'));
  }

  /** Stores, delivers and enqueues one event; resolves with its position (if it has history/latest). */
  private async store(bytes: Uint8Array, d: TopicDurability<QueueRef>, from: Publisher): Promise<PubAckBody | undefined> {
    if (d.queues.length === 0) return this.storeAdmitted(bytes, d, from);
    // Room in every matching queue first (queues.maxJobs): refused before anything is written or delivered.
    const names = d.queues.map((q) => q.name);
    await this.jobs.admit(names);
    try {
      return await this.storeAdmitted(bytes, d, from);
    } finally {
      this.jobs.settled(names);
    }
  }

  private async storeAdmitted(bytes: Uint8Array, d: TopicDurability<QueueRef>, from: Publisher): Promise<PubAckBody | undefined> {
    let frame: Frame;
    let pos: PubAckBody | undefined;
    let unconfirmed: string | undefined;
    if (d.rule) {
      // A topic its rule does not hold yet is admitted first (mesh-wide topic count); a held one costs nothing here.
      const admitting = this.quota.admitTopic(d.topic, d.rule);
      if (admitting) await admitting;
      pos = await this.history.append(d.topic, d.rule, bytes);
      frame = withPosition(bytes, pos);
      if (this.replicaWait) {
        // Delivered only once the replicas have it too (or WAIT timed out): a subscriber then never
        // sees an event that a failover forgets and whose offset a later event reuses. One WAIT
        // answers every write before it on the connection: one group per shard (per topic on a cluster).
        const key = this.history.metaKey(d.topic);
        unconfirmed = await this.replicaWait.unconfirmed(this.clustered ? key : '', key, 'event');
      }
    } else {
      frame = new Frame(bytes, 0, bytes.length);
    }
    // Delivered right when the append resolves: appends of one topic resolve in order (one
    // connection to the topic's shard), so deliveries keep it.
    this.host.deliverAccepted(frame, from);
    this.dueUndelivered.delete(bytes);
    if (d.queues.length > 0) await this.work.enqueue(d.queues, d.topic, frame.bytes);
    if (unconfirmed) throw new StoreError('MB_ERR_STORE_UNAVAILABLE', unconfirmed);
    return pos;
  }

  /** Publishes a stored frame (a delayed publish that is due) as if it were published now on this node. */
  async publishStored(bytes: Uint8Array): Promise<void> {
    let f: Frame;
    try {
      // A delayed job comes back from Redis: untrusted, checked like any stored entry.
      f = readStoredFrame(bytes);
    } catch (e) {
      this.host.stats.store.corrupt++;
      throttled(this.host.logger).warn({ err: String((e as Error).message) }, 'delayed publish skipped: stored frame is corrupt');
      return;
    }
    const d = this.matcher.forFrame(f);
    if (!d) {
      this.host.deliverAccepted(f);
      return;
    }
    this.dueUndelivered.add(bytes);
    try {
      await this.store(bytes, d, undefined);
    } catch (e) {
      // Delivered (and stored) already: a retry of the job would publish it again (once per attempt).
      if (this.dueUndelivered.delete(bytes)) throw e;
      throttled(this.host.logger).warn(storeErr(e), 'delayed publish delivered; what followed it failed, not retried', undefined, storeFailure(e));
    }
  }

  // ---------------------------------------------------------- subscriptions

  /**
   * The subscription for a SUB that asks for durability (`since` or
   * `durable`), or undefined for an ordinary one. Throws a typed error for
   * a SUB durability cannot serve.
   */
  subscription(owner: DurableSession, sid: number, pattern: string, body: SubBody): Subscription | undefined {
    const slow = body.slow ?? 'disconnect';
    if (body.durable) {
      // A durable queue keeps every event its pattern matches in Redis, whoever subscribes: a token's deny rules
      // (filtered at delivery for a plain subscription) would make it store, count and dead-letter events its
      // owner may not read (a review: a member left one storing a denied topic's events, filling its quota).
      if (owner.permissions?.filtersSubscription(pattern)) throw new SessionError('MB_ERR_PERMISSION_DENIED', `a durable queue on "${pattern}" would keep events this token may not receive (a deny rule touches the pattern)`);
      this.work.admit(pattern, body.q!, owner.host);
      const release = this.queueSlots.acquire(owner);
      const sub: Subscription = { sid, pattern, queue: body.q, owner, slow, detached: true };
      this.queueReleases.set(sub, release);
      return sub;
    }
    if (body.since === undefined) return undefined;
    if (hasWildcard(pattern)) throw new StoreError('MB_ERR_NOT_DURABLE', `since/recover needs a literal topic, got the pattern "${pattern}"`);
    const d = this.matcher.forTopic(pattern);
    if (!d?.rule) throw new StoreError('MB_ERR_NOT_DURABLE', `since/recover: no durable rule with history covers "${pattern}" on this node`);
    const waiting = this.waiting();
    if (waiting >= MAX_IN_FLIGHT) throw new StoreError('MB_ERR_STORE_UNAVAILABLE', `${waiting} commands already waiting for Redis; subscribe with since again later`);
    let release: () => void;
    try {
      release = this.replays.acquire(owner);
    } catch (e) {
      this.host.stats.store.replaysRefused++;
      throw e;
    }
    const seq = new Sequencer(sequencedOwner(owner), sid, pattern, d.rule, { store: this.history, logger: this.host.logger, stats: this.host.stats, release });
    const sub: Subscription = { sid, pattern, queue: undefined, owner, slow, sequencer: seq };
    this.sequencers.set(sub, seq);
    return sub;
  }

  /** After the subscription is in the routing table: start recovery, consume the queue, or send latest values. */
  subscribed(owner: DurableSession, sub: Subscription, body: SubBody, isCurrent: () => boolean): void {
    const seq = this.sequencers.get(sub);
    if (seq) {
      seq.start({ epoch: body.since![0], offset: body.since![1] }, body.ref);
      return;
    }
    if (sub.detached) {
      this.work.addMember(sub).catch((e: unknown) => {
        throttled(this.host.logger).warn({ pattern: sub.pattern, ...storeErr(e) }, 'durable queue registration failed: retried until redis takes it', undefined, storeFailure(e));
        const code = storeCode(e);
        owner.send(errorFrame(code, sub.sid, `durable queue: ${storeFailure(e)}; the subscription joins the queue ${code === 'MB_ERR_STORE_CORRUPT' ? 'once the key is removed' : 'when it is back'}`));
        this.memberRetry.add(sub);
      });
      return;
    }
    if (body.latest !== false && sub.queue === undefined && this.matcher.latestRules().length > 0) {
      const waiting = this.waiting();
      // A SUB churned on a silent Redis queued one read each (the live subscription is not refused).
      if (waiting >= MAX_IN_FLIGHT) return owner.send(errorFrame('MB_ERR_STORE_UNAVAILABLE', sub.sid, `latest values not sent: ${waiting} commands already waiting for Redis`));
      // A wildcard SUB reads the latest hash in pages and holds a replay slot meanwhile (same bounds as SUB `since`).
      const acquire = (): (() => void) => {
        try {
          return this.replays.acquire(owner);
        } catch (e) {
          this.host.stats.store.replaysRefused++;
          throw e;
        }
      };
      sendLatest(sequencedOwner(owner), sub.sid, sub.pattern, this.matcher as DurableMatcher<NonNullable<unknown>>, this.history, isCurrent, this.host.logger, this.host.stats, acquire, this.latestReads).catch((e: unknown) =>
        throttled(this.host.logger).error({ pattern: sub.pattern, ...storeErr(e) }, 'latest values failed', undefined, storeFailure(e)),
      );
    }
  }

  unsubscribed(sub: Subscription): void {
    const seq = this.sequencers.get(sub);
    if (seq) {
      seq.cancel();
      this.sequencers.delete(sub);
    }
    if (sub.detached) {
      this.memberRetry.delete(sub);
      this.work.removeMember(sub);
      this.queueReleases.get(sub)?.();
      this.queueReleases.delete(sub);
    }
  }

  /** ACK/NACK from a client: settles a durable queue delivery. False when it names none. */
  clientAck(owner: DurableSession, f: Frame): boolean {
    let reason = '';
    if (f.type === FrameType.NACK && f.payloadLen > 0) {
      try {
        reason = decodeError(f.payload).message;
      } catch {
        reason = 'rejected by consumer';
      }
    }
    return this.work.settle(owner, f.correlation, f.type === FrameType.ACK, reason);
  }

  /** Dead letters of a queue group, or without one those of the delayed publishes given up (tools, tests). */
  deadLetters(group?: string): ReturnType<WorkQueues['deadLetters']> {
    return this.work.deadLetters(group);
  }

  /** Jobs still waiting for (pattern, group). */
  backlog(pattern: string, group: string): Promise<number> {
    return this.work.backlog(pattern, group);
  }

  /** Reads history directly (tools, tests). */
  get historyStore(): HistoryStore {
    return this.history;
  }
}

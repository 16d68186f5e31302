/**
 * Durable checks of the chaos engine (bench/src/chaos-mesh.ts), run when a
 * Redis is reachable. The nodes then start with `--redis <url>
 * --redis-prefix <unique per run> --durable 'dur.>|history=100000'`.
 *
 *  - Durable publishers publish with `{ack: true}` on `dur.p<i>` (payload
 *    `<i>,<seq>`) and record which sequences were acknowledged (promise
 *    resolved) and which failed (rejected: NACK or connection lost, outcome
 *    unknown).
 *  - A recovering subscriber (`subscribe('dur.p<i>', {recover: true})`, one
 *    per publisher: `since` needs a literal topic) lives through the faults.
 *    At the end every acknowledged sequence must have been received exactly
 *    once and in order per publisher; unacknowledged ones may be missing but
 *    never twice.
 *  - A durable queue group (`jobs.>`, group `workers`, one consumer per node
 *    for the first three nodes) is fed by acknowledged publishes on
 *    `jobs.<k>`. Every acknowledged job must be processed at least once
 *    (or still be waiting in Redis, e.g. locked by a killed node until
 *    BullMQ's stall check). A job handed out again is a *redelivery* when the
 *    consumer that had it lost its connection within 5 s after receiving it
 *    (its node was killed: the ACK may never have reached Redis, BullMQ is
 *    at-least-once); any other second delivery is a *duplicate* (a failure).
 */
import { connect, type Client, type ConnectOptions, type Msg, type Status } from '@meshbus/sdk';
import { queuedJobs, type ChaosRedis } from './chaos-redis.js';
import { sleep } from './proc.js';

export { findRedis, type ChaosRedis } from './chaos-redis.js';

export const DURABLE_SPEC = 'dur.>|history=100000';
const JOBS_PATTERN = 'jobs.>';
const JOBS_GROUP = 'workers';
/** A consumer losing its connection this soon after receiving a job may not have had its ACK reach Redis. */
const REDELIVERY_WINDOW_MS = 5000;
/** Acked publishes in flight per publisher; above it a tick publishes nothing. */
const MAX_IN_FLIGHT = 200;

export interface DurableReport {
  /** Set when the durable checks did not run (e.g. "no Redis"). */
  skipped?: string;
  redis?: string;
  prefix?: string;
  publishers: number;
  /** Acked publishes per second per durable publisher. */
  rate: number;
  sent: number;
  acked: number;
  /** Rejected (NACK, or connection lost before the ACK: outcome unknown). */
  failed: number;
  /** Neither resolved nor rejected by the end. */
  unsettled: number;
  /** Deliveries to the recovering subscriber. */
  received: number;
  /** Acknowledged sequences never received. */
  lostAcked: number;
  /** Sequences (acked or not) received more than once. */
  duplicates: number;
  /** Acknowledged sequences received after a higher acknowledged one of the same publisher. */
  reorderedAcked: number;
  /** Events received that were not acknowledged (allowed). */
  unackedReceived: number;
  /** Resumes of the recovering subscriber after a reconnect; those answered `recovered: false`. */
  resumes: number;
  notRecovered: number;
  lostSample: string[];
  queue: {
    consumers: number;
    rate: number;
    sent: number;
    acked: number;
    failed: number;
    unsettled: number;
    /** Deliveries to the group (all consumers). */
    deliveries: number;
    /** Distinct acknowledged jobs processed at least once. */
    processed: number;
    /** Acknowledged jobs not processed and not in Redis any more. */
    lostAcked: number;
    /** Acknowledged jobs not processed yet but still queued in Redis at the end. */
    pending: number;
    /** Second deliveries explained by the previous consumer losing its node mid-job. */
    redeliveries: number;
    /** Second deliveries without such an explanation (must be 0). */
    duplicates: number;
    perConsumer: number[];
    duplicateSample: string[];
    lostSample: string[];
  };
}

export function skippedDurable(reason: string): DurableReport {
  return {
    skipped: reason,
    publishers: 0,
    rate: 0,
    sent: 0,
    acked: 0,
    failed: 0,
    unsettled: 0,
    received: 0,
    lostAcked: 0,
    duplicates: 0,
    reorderedAcked: 0,
    unackedReceived: 0,
    resumes: 0,
    notRecovered: 0,
    lostSample: [],
    queue: { consumers: 0, rate: 0, sent: 0, acked: 0, failed: 0, unsettled: 0, deliveries: 0, processed: 0, lostAcked: 0, pending: 0, redeliveries: 0, duplicates: 0, perConsumer: [], duplicateSample: [], lostSample: [] },
  };
}

/** Durable checks failed: acked events lost, duplicates, acked events out of order, acked jobs lost, duplicate jobs. */
export function durableFailed(d: DurableReport): boolean {
  if (d.skipped) return false;
  return d.lostAcked > 0 || d.duplicates > 0 || d.reorderedAcked > 0 || d.queue.lostAcked > 0 || d.queue.duplicates > 0 || d.acked === 0 || d.queue.acked === 0;
}

export interface DurableRunOptions {
  redis: ChaosRedis;
  /** Client URLs of the nodes, node 0 first. */
  urls: string[];
  clientOptions: ConnectOptions;
  publishers: number;
  rate: number;
  jobRate: number;
  log: (line: string) => void;
}

interface Delivery {
  consumer: number;
  at: number;
}

/**
 * Starts the durable clients. `start()` subscribes (and waits until every
 * recovering subscription is answered and the queue is known), `publish()`
 * is called by the engine's publishing tick, `finish(drainMs)` stops,
 * waits for the acked events and jobs and returns the figures.
 */
export class DurableChecks {
  readonly clients: Client[] = [];
  private readonly pubs: Client[] = [];
  private jobPub: Client | undefined;
  private readonly seqs: number[];
  private readonly inFlight: number[];
  private readonly acked: Array<Set<number>>;
  private readonly failed: Array<Set<number>>;
  private readonly got: number[][];
  private readonly seen: Array<Set<number>>;
  private duplicates = 0;
  private received = 0;
  private resumes = 0;
  private notRecovered = 0;
  private jobSeq = 0;
  private jobInFlight = 0;
  private readonly jobAcked = new Set<number>();
  private readonly jobFailed = new Set<number>();
  private readonly jobDeliveries = new Map<number, Delivery[]>();
  private readonly consumerDown: number[][] = [];
  private readonly perConsumer: number[] = [];
  private stopped = false;
  private owed = [0, 0];

  constructor(private readonly o: DurableRunOptions) {
    const n = o.publishers;
    this.seqs = new Array(n).fill(0);
    this.inFlight = new Array(n).fill(0);
    this.acked = Array.from({ length: n }, () => new Set());
    this.failed = Array.from({ length: n }, () => new Set());
    this.got = Array.from({ length: n }, () => []);
    this.seen = Array.from({ length: n }, () => new Set());
  }

  private rotated(k: number): string[] {
    const u = this.o.urls;
    return u.map((_x, i) => u[(i + k) % u.length]!);
  }

  private async client(name: string, first: number): Promise<Client> {
    const c = await connect(this.rotated(first), { name, ...this.o.clientOptions });
    this.clients.push(c);
    return c;
  }

  async start(): Promise<void> {
    const n = this.o.urls.length;
    // Recovering subscriber: on node 0 first (the first node killed).
    const sub = await this.client('chaos-dur-sub', 0);
    const answered = new Set<number>();
    sub.on('status', (s: Status) => {
      if (s.type !== 'recovery') return;
      if (answered.has(s.sid)) {
        this.resumes++;
        if (!s.recovered) {
          this.notRecovered++;
          this.o.log(`  durable subscriber: resume of ${s.pattern} answered recovered=false at ${s.position.epoch}/${s.position.offset}`);
        }
      }
      answered.add(s.sid);
    });
    for (let p = 0; p < this.o.publishers; p++) {
      sub.subscribe(`dur.p${p}`, {
        recover: true,
        callback: (m: Msg) => {
          const [pp, seq] = Buffer.from(m.data).toString().split(',').map(Number) as [number, number];
          this.received++;
          const seen = this.seen[pp]!;
          if (seen.has(seq)) {
            this.duplicates++;
            this.o.log(`  !! durable subscriber: dur.p${pp} seq ${seq} received twice`);
            return;
          }
          seen.add(seq);
          this.got[pp]!.push(seq);
        },
      });
    }
    const deadline = Date.now() + 10_000;
    while (answered.size < this.o.publishers) {
      if (Date.now() > deadline) throw new Error('durable subscriptions not answered');
      await new Promise((r) => setTimeout(r, 20));
    }
    // Queue consumers: one on each of the first three nodes.
    const nCons = Math.min(3, n);
    for (let c = 0; c < nCons; c++) {
      const idx = c;
      this.consumerDown.push([]);
      this.perConsumer.push(0);
      const cl = await this.client(`chaos-worker-${c}`, c);
      cl.on('status', (s: Status) => {
        if (s.type === 'disconnected') this.consumerDown[idx]!.push(Date.now());
      });
      cl.subscribe(JOBS_PATTERN, {
        queue: JOBS_GROUP,
        durable: true,
        callback: (m: Msg) => {
          const mm = /\|J(\d+)\|/.exec(Buffer.from(m.data).toString());
          if (!mm) return;
          const job = Number(mm[1]);
          this.perConsumer[idx]!++;
          let ds = this.jobDeliveries.get(job);
          if (!ds) this.jobDeliveries.set(job, (ds = []));
          ds.push({ consumer: idx, at: Date.now() });
          // returning ACKs the job
        },
      });
      await cl.flush();
    }
    // Publishers (durable events and jobs) on other nodes than the subscriber.
    for (let p = 0; p < this.o.publishers; p++) this.pubs.push(await this.client(`chaos-dur-pub-${p}`, 1 + p));
    this.jobPub = await this.client('chaos-job-pub', 1);
    // Every node learns the new queue through a Redis pub/sub notice; give it time.
    await new Promise((r) => setTimeout(r, 1500));
  }

  /** One publishing tick of `ms` ms: durable events and jobs at their rates. */
  tick(ms: number): void {
    if (this.stopped) return;
    this.owed[0]! += (this.o.rate * ms) / 1000;
    this.owed[1]! += (this.o.jobRate * ms) / 1000;
    const nEv = Math.floor(this.owed[0]!);
    const nJob = Math.floor(this.owed[1]!);
    this.owed[0]! -= nEv;
    this.owed[1]! -= nJob;
    for (let p = 0; p < this.pubs.length; p++) {
      for (let k = 0; k < nEv; k++) {
        if (this.inFlight[p]! >= MAX_IN_FLIGHT) break;
        const seq = this.seqs[p]!++;
        this.inFlight[p]!++;
        let pr: Promise<unknown> | void;
        try {
          pr = this.pubs[p]!.publish(`dur.p${p}`, `${p},${seq}`, { ack: true });
        } catch {
          pr = Promise.reject(new Error('not sent'));
        }
        Promise.resolve(pr).then(
          () => this.acked[p]!.add(seq),
          () => this.failed[p]!.add(seq),
        ).finally(() => this.inFlight[p]!--);
      }
    }
    for (let k = 0; k < nJob; k++) {
      if (this.jobInFlight >= MAX_IN_FLIGHT) break;
      const job = this.jobSeq++;
      this.jobInFlight++;
      let pr: Promise<unknown> | void;
      try {
        pr = this.jobPub!.publish(`jobs.${job % 4}`, `|J${job}|`, { ack: true });
      } catch {
        pr = Promise.reject(new Error('not sent'));
      }
      Promise.resolve(pr).then(
        () => this.jobAcked.add(job),
        () => this.jobFailed.add(job),
      ).finally(() => this.jobInFlight--);
    }
  }

  private missingEvents(): number {
    let m = 0;
    for (let p = 0; p < this.acked.length; p++) for (const s of this.acked[p]!) if (!this.seen[p]!.has(s)) m++;
    return m;
  }
  private missingJobs(): number[] {
    const out: number[] = [];
    for (const j of this.jobAcked) if (!this.jobDeliveries.has(j)) out.push(j);
    return out;
  }

  /** Stops publishing, waits (bounded) for every acked event and job, and returns the figures. */
  async finish(drainMs: number): Promise<DurableReport> {
    this.stopped = true;
    const settleBy = Date.now() + 10_000;
    while ((this.inFlight.some((x) => x > 0) || this.jobInFlight > 0) && Date.now() < settleBy) await sleep(20);
    const drainBy = Date.now() + drainMs;
    while ((this.missingEvents() > 0 || this.missingJobs().length > 0) && Date.now() < drainBy) await sleep(50);
    await sleep(500); // late duplicates
    const missingJobs = this.missingJobs();
    const queued = missingJobs.length > 0 ? await queuedJobs(this.o.redis.url, this.o.redis.prefix, JOBS_PATTERN, JOBS_GROUP) : new Set<number>();

    let acked = 0;
    let failed = 0;
    let sent = 0;
    let lostAcked = 0;
    let reorderedAcked = 0;
    let unackedReceived = 0;
    const lostSample: string[] = [];
    for (let p = 0; p < this.acked.length; p++) {
      const ack = this.acked[p]!;
      sent += this.seqs[p]!;
      acked += ack.size;
      failed += this.failed[p]!.size;
      for (const s of ack) {
        if (!this.seen[p]!.has(s)) {
          lostAcked++;
          if (lostSample.length < 10) lostSample.push(`dur.p${p}#${s}`);
        }
      }
      let max = -1;
      for (const s of this.got[p]!) {
        if (!ack.has(s)) {
          unackedReceived++;
          continue;
        }
        if (s < max) reorderedAcked++;
        else max = s;
      }
    }

    let redeliveries = 0;
    let dupJobs = 0;
    let deliveries = 0;
    let processed = 0;
    const duplicateSample: string[] = [];
    for (const [job, ds] of this.jobDeliveries) {
      deliveries += ds.length;
      if (this.jobAcked.has(job)) processed++;
      for (let i = 1; i < ds.length; i++) {
        const prev = ds[i - 1]!;
        const lostNode = this.consumerDown[prev.consumer]!.some((t) => t >= prev.at && t <= prev.at + REDELIVERY_WINDOW_MS);
        if (lostNode) redeliveries++;
        else {
          dupJobs++;
          if (duplicateSample.length < 10) duplicateSample.push(`J${job}: consumer ${prev.consumer} at +${prev.at} then consumer ${ds[i]!.consumer} ${ds[i]!.at - prev.at} ms later`);
        }
      }
    }
    const pending = missingJobs.filter((j) => queued.has(j));
    const lostJobs = missingJobs.filter((j) => !queued.has(j));
    return {
      redis: this.o.redis.url,
      prefix: this.o.redis.prefix,
      publishers: this.o.publishers,
      rate: this.o.rate,
      sent,
      acked,
      failed,
      unsettled: sent - acked - failed,
      received: this.received,
      lostAcked,
      duplicates: this.duplicates,
      reorderedAcked,
      unackedReceived,
      resumes: this.resumes,
      notRecovered: this.notRecovered,
      lostSample,
      queue: {
        consumers: this.perConsumer.length,
        rate: this.o.jobRate,
        sent: this.jobSeq,
        acked: this.jobAcked.size,
        failed: this.jobFailed.size,
        unsettled: this.jobSeq - this.jobAcked.size - this.jobFailed.size,
        deliveries,
        processed,
        lostAcked: lostJobs.length,
        pending: pending.length,
        redeliveries,
        duplicates: dupJobs,
        perConsumer: [...this.perConsumer],
        duplicateSample,
        lostSample: lostJobs.slice(0, 10).map((j) => `J${j}`),
      },
    };
  }
}

export function summarizeDurable(d: DurableReport): string[] {
  if (d.skipped) return [`durable checks skipped: ${d.skipped}`];
  const q = d.queue;
  return [
    `durable events (${d.publishers} publishers x ${d.rate}/s acked, 1 recovering subscriber): sent ${d.sent}, acknowledged ${d.acked}, failed ${d.failed}, unsettled ${d.unsettled}; received ${d.received} (${d.unackedReceived} not acknowledged); lost acknowledged ${d.lostAcked}, duplicates ${d.duplicates}, acknowledged out of order ${d.reorderedAcked}; resumes ${d.resumes} (recovered=false ${d.notRecovered})${d.lostSample.length ? `; lost e.g. ${d.lostSample.join(' ')}` : ''}`,
    `durable queue (${q.consumers} consumers, ${q.rate} jobs/s acked): sent ${q.sent}, acknowledged ${q.acked}, failed ${q.failed}, unsettled ${q.unsettled}; deliveries ${q.deliveries} (per consumer ${q.perConsumer.join(', ')}); acknowledged processed ${q.processed}, lost acknowledged ${q.lostAcked}, still queued ${q.pending}; redeliveries after a lost node ${q.redeliveries}, duplicates ${q.duplicates}${q.duplicateSample.length ? `; e.g. ${q.duplicateSample.join('; ')}` : ''}${q.lostSample.length ? `; lost e.g. ${q.lostSample.join(' ')}` : ''}`,
  ];
}

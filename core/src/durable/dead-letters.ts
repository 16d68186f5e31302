import { isDeadLetterTopic } from '../auth/reserved-topics.js';
import type { Job, Queue } from 'bullmq';
import type { ExtensionHost } from '../node-extension.js';
import type { Logger } from '../logger.js';
import { throttled } from '../told-recently.js';
import { readStoredFrame } from './stored-frame.js';
import { jobFrame } from './queue-worker.js';
import { connectionError, storeErr, storeFailure } from './connection-error.js';
import { unreadableReason } from './readable-job.js';
import type { JobData } from './queue-names.js';
import { thrownText } from '@meshbus/proto';

/** Bounds one wait on Redis (WorkQueues.bounded: the store deadline). */
type Bounded = <T>(op: Promise<T>, what: string) => Promise<T>;

/**
 * Adds a dead letter to a group's dead-letter queue and keeps that queue
 * at `max` letters (queues.maxJobs), dropping the oldest past it; resolves
 * with how many were dropped. Why: a dead letter waits in Redis until an
 * operator reads it, and nothing else bounded them: a consumer that NACKs
 * every job (buggy, or hostile) turned the bounded work queue into an
 * unbounded one, each job freeing its room in maxJobs as it was
 * dead-lettered, so publishers went on and Redis grew for ever.
 */
export function addDeadLetter(dlq: Queue, data: object, max: number, bounded: Bounded): Promise<number> {
  // One letter at a time per queue: two trims at once each dropped the oldest past the bound, the second
  // dropping letters the first had already made room for (maxJobs 3 kept 2: delayed-dead-letter.test.ts).
  // `writing` holds promises that never reject.
  const run = (writing.get(dlq) ?? Promise.resolve()).then(() => writeAndTrim(dlq, data, max, bounded));
  const settled = run.then(
    () => undefined,
    () => undefined,
  );
  writing.set(dlq, settled);
  void settled.then(() => {
    if (writing.get(dlq) === settled) writing.delete(dlq);
  });
  return run;
}

/**
 * The last letter write of each dead-letter queue of this process. Nodes
 * sharing a Redis still trim concurrently: one may drop a letter the other
 * had made room for (the bound holds; a letter may go early).
 */
const writing = new WeakMap<Queue, Promise<unknown>>();

async function writeAndTrim(dlq: Queue, data: object, max: number, bounded: Bounded): Promise<number> {
  await bounded(dlq.add('dead', data, { removeOnComplete: true, removeOnFail: false }), 'the dead-letter write');
  const waiting = await bounded(dlq.getWaitingCount(), 'the dead-letter count');
  if (waiting <= max) return 0;
  // Oldest first (asc): the letters an operator has had longest to read.
  const oldest = await bounded(dlq.getJobs(['waiting'], 0, waiting - max - 1, true), 'the dead-letter trim');
  await bounded(Promise.all(oldest.map((j) => j.remove())), 'the dead-letter trim');
  return oldest.length;
}

/** A dead letter as stored and read back: the job's data, why it was given up and after how many attempts. */
export type DeadLetter = JobData & { error: string; attempts: number };

/** What dead-lettering needs of the work queues (WorkQueues). */
export interface DeadLetterStore {
  /** The BullMQ queue named `name`. */
  queue(name: string): Queue;
  /** queues.maxJobs: the most letters one dead-letter queue keeps. */
  maxJobs: number;
  bounded: Bounded;
  logger: Logger;
  /** A job whose frame cannot be read: not kept (counted as corrupt). */
  onCorrupt(): void;
  /** One letter was stored (meshbus_store_dead_letters_total{kind}). */
  onStored(kind: 'queue' | 'delayed'): void;
  /** True once the node stops (a letter cut short then is said so, not as Redis lost). */
  stopping?: () => boolean;
}

/**
 * Keeps `job`, given up after `err` (BullMQ moved it to its queue's failed
 * jobs: removeOnFail is off), as a dead letter in the queue `dlq` (with
 * `about`: a work queue's pattern and group), bounded at maxJobs
 * (addDeadLetter), then removes it from the failed jobs. Resolves with its
 * frame, or undefined when the job cannot be read (then it is removed
 * without a letter: corrupt, counted and logged). A letter that cannot be
 * written is logged at error level and the job stays in the failed jobs,
 * where an operator still finds it; before, BullMQ had removed it already
 * (removeOnFail), and a store deadline or failover at that moment lost an
 * acknowledged event without a trace.
 */
export async function deadLetterJob(s: DeadLetterStore, dlq: string, kind: 'queue' | 'delayed', job: Job<JobData>, err: Error, about: object): Promise<Uint8Array | undefined> {
  let frame: Uint8Array | undefined;
  try {
    frame = jobFrame(job.data);
  } catch (e) {
    s.onCorrupt();
    throttled(s.logger).warn({ queue: job.queueName, err: String((e as Error).message) }, 'corrupt job not dead-lettered');
  }
  try {
    if (frame) {
      const data = { ...job.data, ...about, error: err.message, attempts: job.attemptsMade };
      const dropped = await addDeadLetter(s.queue(dlq), data, s.maxJobs, s.bounded);
      s.onStored(kind);
      if (dropped > 0) throttled(s.logger).warn({ deadLetters: dlq, dropped, maxJobs: s.maxJobs }, 'oldest dead letters dropped past queues.maxJobs');
    }
    await s.bounded(job.remove(), 'the given-up job removal');
  } catch (e) {
    // The node's stop waited for the letter (bounded) and then closed its connections: not Redis lost.
    const cut = s.stopping?.() === true && connectionError(e);
    if (cut) throttled(s.logger).error({ queue: job.queueName, job: job.id, err: thrownText(e) }, 'dead-lettering not finished before the node stopped: the job stays in the failed jobs');
    else throttled(s.logger).error({ queue: job.queueName, job: job.id, ...storeErr(e) }, 'dead-lettering failed: the job stays in the failed jobs', undefined, storeFailure(e));
  }
  return frame;
}

/** The letters waiting in the dead-letter queue `dlq`, oldest first. */
export async function readDeadLetters(s: DeadLetterStore, dlq: string): Promise<DeadLetter[]> {
  const jobs = await s.bounded(s.queue(dlq).getJobs(['waiting', 'delayed', 'paused'], 0, -1, true), 'the dead-letter read');
  // A letter whose stored data is not JSON (ReadableJob): skipped and counted, the others still read.
  const readable = jobs.filter((j) => unreadableReason(j.data) === undefined);
  if (readable.length < jobs.length) {
    for (let i = readable.length; i < jobs.length; i++) s.onCorrupt();
    throttled(s.logger).warn({ deadLetters: dlq, skipped: jobs.length - readable.length }, 'unreadable dead letters skipped');
  }
  return readable.map((j) => j.data as DeadLetter);
}

/**
 * Publishes a dead letter on `_DLQ.<group>` through `host` (its headers, and
 * `mb-topic`, `mb-error`); a frame that cannot be read is logged (throttled).
 */
export function publishDeadLetter(host: ExtensionHost, group: string, frame: Uint8Array, error: string): void {
  try {
    const f = readStoredFrame(frame);
    const headers = f.ext?.headers ?? {};
    // A dead letter dead-lettered again (a durable queue on `_DLQ…`) keeps naming the topic its event was published
    // on: before, it named `_DLQ.<group>`, which a token denied that topic could read (reserved-topics.ts mayReadDeadLetter).
    const topic = isDeadLetterTopic(f.topic) && headers['mb-topic'] !== undefined ? headers['mb-topic'] : f.topic;
    host.publishLocal(`_DLQ.${group}`, f.payload, { headers: { ...headers, 'mb-topic': topic, 'mb-error': error } });
  } catch (e) {
    throttled(host.logger).warn({ group, err: thrownText(e) }, 'cannot publish dead letter');
  }
}

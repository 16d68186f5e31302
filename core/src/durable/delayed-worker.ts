import { Worker, type Job } from 'bullmq';
import type { Logger } from '../logger.js';
import { throttled } from '../told-recently.js';
import { guardWorker } from './bullmq-guard.js';
import { givenUp, jobFrame } from './queue-worker.js';
import type { RedisClient } from './redis-connect.js';
import type { JobData } from './queue-names.js';

/** What the worker of delayed publishes needs of WorkQueues. */
export interface DelayedWorkerHooks {
  /** Blocking connections are duplicated from it. */
  conn: RedisClient;
  bullPrefix: string;
  logger: Logger;
  /** Publishes an event whose delay is over; a rejection fails the attempt (retried with backoff). */
  publishDue(frame: Uint8Array): Promise<void>;
  /** A job read back from Redis that cannot be decoded: dropped (retrying cannot repair it), counted. */
  onCorrupt(): void;
  /** The job no longer waits: published or dropped, or given up after its attempts (`gaveUp`). */
  done(job: Job<JobData>, gaveUp?: Error): void;
  onError(e: unknown): void;
}

/** The BullMQ worker that publishes delayed publishes as they fall due (on whichever node takes each). */
export function delayedWorker(h: DelayedWorkerHooks): Worker {
  const worker = guardWorker(
    new Worker(
      'delayed',
      async (job: Job<JobData>) => {
        // Read back from Redis: untrusted. Unreadable (no frame at all included): dropped and counted, not retried.
        let frame: Uint8Array | undefined;
        try {
          frame = jobFrame(job.data);
        } catch (e) {
          h.onCorrupt();
          throttled(h.logger).warn({ queue: 'delayed', job: job.id, err: String((e as Error).message) }, 'corrupt delayed publish dropped');
        }
        if (frame) await h.publishDue(frame);
        h.done(job);
      },
      { connection: h.conn, prefix: h.bullPrefix, concurrency: 16 },
    ),
  );
  worker.on('error', (e) => h.onError(e));
  // Given up after its attempts: no longer waiting (its room in the quota is free), dead-lettered.
  worker.on('failed', (job, err) => {
    if (job && givenUp(job, err)) h.done(job as Job<JobData>, err);
  });
  return worker;
}

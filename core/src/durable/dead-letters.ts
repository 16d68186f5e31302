import type { Queue } from 'bullmq';
import type { ExtensionHost } from '../node-extension.js';
import { throttled } from '../told-recently.js';
import { readStoredFrame } from './stored-frame.js';

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
export async function addDeadLetter(dlq: Queue, data: object, max: number, bounded: Bounded): Promise<number> {
  await bounded(dlq.add('dead', data, { removeOnComplete: true, removeOnFail: false }), 'the dead-letter write');
  const waiting = await bounded(dlq.getWaitingCount(), 'the dead-letter count');
  if (waiting <= max) return 0;
  // Oldest first (asc): the letters an operator has had longest to read.
  const oldest = await bounded(dlq.getJobs(['waiting'], 0, waiting - max - 1, true), 'the dead-letter trim');
  await bounded(Promise.all(oldest.map((j) => j.remove())), 'the dead-letter trim');
  return oldest.length;
}

/**
 * Publishes a dead letter on `_DLQ.<group>` through `host` (its headers, and
 * `mb-topic`, `mb-error`); a frame that cannot be read is logged (throttled).
 */
export function publishDeadLetter(host: ExtensionHost, group: string, frame: Uint8Array, error: string): void {
  try {
    const f = readStoredFrame(frame);
    host.publishLocal(`_DLQ.${group}`, f.payload, { headers: { ...(f.ext?.headers ?? {}), 'mb-topic': f.topic, 'mb-error': error } });
  } catch (e) {
    throttled(host.logger).warn({ group, err: String(e) }, 'cannot publish dead letter');
  }
}

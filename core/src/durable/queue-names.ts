import { randomUUID } from 'node:crypto';

/**
 * What a durable work queue is called and carries: BullMQ queue and key
 * names (Redis Cluster safe), the queue's reference and a job's data.
 */

/** A durable work queue: events on `pattern` become BullMQ jobs for the consumers of `group`. */
export interface QueueRef {
  pattern: string;
  group: string;
  /** BullMQ queue name. */
  name: string;
}

export interface JobData {
  /** The event frame, base64. */
  f: string;
  topic: string;
  /** Delayed publishes: the bytes reserved in the delayed quota (given back when published or given up). */
  b?: number;
}

/** BullMQ queue names cannot contain ':'; base64url keeps any pattern and group. */
export function queueName(pattern: string, group: string): string {
  return `wq-${Buffer.from(`${pattern}\u0000${group}`).toString('base64url')}`;
}
export function dlqName(group: string): string {
  return `dlq-${Buffer.from(group).toString('base64url')}`;
}
/**
 * The dead-letter queue of delayed publishes given up (they have no group).
 * No group's can be named so: base64url has no '.'.
 */
export const DELAYED_DLQ = 'dlq.delayed';

/**
 * BullMQ's key prefix for a node key prefix: `{<prefix>bull}`. Every BullMQ
 * script touches several keys of a queue; the braces make them one hash tag,
 * hence one Redis Cluster slot (BullMQ's own rule for clusters).
 */
export function bullPrefix(prefix: string): string {
  return `{${prefix}bull}`;
}

/**
 * The id of a delayed publish that reserved `bytes` in the delayed quota:
 * `<bytes>.<uuid>`. The id names the job's hash key, so the reservation is
 * known for a job whose stored data cannot be read (a hash field that is not
 * JSON: SPEC 15.7); with the size in `data.b` only, such a job dropped when
 * due gave back its event but not its bytes, held until the count next fell
 * to 0.
 */
export function delayedJobId(bytes: number): string {
  return `${bytes}.${randomUUID()}`;
}

/**
 * The bytes a delayed publish reserved: from its id (delayedJobId), else
 * (a job stored by an older node) its data's `b`; 0 when neither says.
 * Untrusted (read back from Redis): the release clamps it.
 */
export function delayedJobBytes(job: { id?: string; data?: unknown }): number {
  const m = /^(\d{1,15})\./.exec(job.id ?? '');
  if (m) return Number(m[1]);
  const b = (job.data as { b?: unknown } | null | undefined)?.b;
  return typeof b === 'number' ? b : 0;
}

import { Job, type JobJsonRaw, type MinimalQueue, type Queue, type Worker } from 'bullmq';

/** Why each job read back unreadable could not be read, by its (stand-in) data object. */
const unreadable = new WeakMap<object, string>();

/** The fields of a stored job BullMQ parses as JSON, and what stands in for one that is not JSON. */
const PARSED: Array<[keyof JobJsonRaw, string | undefined]> = [
  ['data', '{}'],
  ['opts', '{}'],
  ['progress', '0'],
  ['parent', undefined],
];

/**
 * Why the data of a job read back from Redis could not be read (a field of
 * its hash that is not JSON); undefined for a job read as stored.
 */
export function unreadableReason(data: unknown): string | undefined {
  return typeof data === 'object' && data !== null ? unreadable.get(data) : undefined;
}

/**
 * A BullMQ Job that can always be made from what Redis holds. BullMQ parses a
 * job's hash (Job.fromJSON: `data`, `opts`, `progress`, `parent` as JSON)
 * before the node's processor sees the job, and a field that is not JSON
 * threw there: in a worker's fetch, an 'error' event that was only logged,
 * while the job stayed active with its lock, stalled, was fetched again, and
 * so on for ever (counted against queues.maxJobs, never counted as corrupt);
 * in a queue's getJobs (dead letters read or trimmed), a failure of the whole
 * read. Such a job is made with stand-ins for the fields that are not JSON
 * and an empty `data` that unreadableReason() names, so the processor drops
 * it and counts it (SPEC 15.7) like any job without a readable event; it is
 * removed once done (removeOnComplete), whatever its unreadable opts said.
 */
export class ReadableJob extends Job {
  static override fromJSON<T = unknown, R = unknown, N extends string = string>(queue: MinimalQueue, json: JobJsonRaw, jobId?: string): Job<T, R, N> {
    try {
      return super.fromJSON<T, R, N>(queue, json, jobId);
    } catch {
      const patched: Record<string, unknown> = { ...json };
      const bad: string[] = [];
      for (const [field, standIn] of PARSED) {
        const v = json[field];
        if (typeof v !== 'string' || v === '') continue;
        try {
          JSON.parse(v);
        } catch {
          bad.push(String(field));
          patched[field] = standIn;
        }
      }
      // Something else failed (not one of the parsed fields): the job still cannot be read as stored.
      if (bad.length === 0) bad.push('hash');
      const job = super.fromJSON<T, R, N>(queue, patched as unknown as JobJsonRaw, jobId);
      const data = {};
      unreadable.set(data, `stored job ${bad.join(', ')} not readable`);
      job.data = data as T;
      job.opts = { ...job.opts, removeOnComplete: true };
      return job;
    }
  }
}

/** Makes `o` build the jobs it reads from Redis as ReadableJob (BullMQ reads its `Job` getter for the class). Returns `o`. */
export function readableJobs<T extends Queue | Worker>(o: T): T {
  Object.defineProperty(o, 'Job', { configurable: true, value: ReadableJob });
  return o;
}

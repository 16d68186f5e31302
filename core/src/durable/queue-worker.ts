import { WaitingError, type Job, type Worker } from 'bullmq';
import type { Subscription } from '../subscriber.js';
import { StoreError } from '@meshbus/proto';
import { abandonMoves, closeWorker } from './close-worker.js';
import { readStoredFrame } from './stored-frame.js';

/** The event frame of a job read back from Redis (`data.f`, base64); StoreError MB_ERR_STORE_CORRUPT when it is not one. */
export function jobFrame(data: unknown): Uint8Array {
  const f = (data as { f?: unknown } | null)?.f;
  if (typeof f !== 'string') throw new StoreError('MB_ERR_STORE_CORRUPT', 'job has no frame');
  const bytes = Buffer.from(f, 'base64');
  readStoredFrame(bytes);
  return bytes;
}

/** A local member of a durable queue. */
export interface Member {
  sub: Subscription;
  busy: boolean;
}

/**
 * The one BullMQ worker of a queue on a node and its local members.
 * `closing` resolves once the worker stops fetching (close() called): from
 * then on a job it holds can be given back without being fetched again.
 */
export interface WorkerEntry<R> {
  ref: R;
  worker: Worker;
  members: Member[];
  rr: number;
  closing: Promise<void>;
  closingNow: () => void;
  /** Jobs waiting for a member to be free (each wakes with one; all wake when members leave or the node stops). */
  freed: Array<() => void>;
}

/** False for a member's owner whose connection is closing or gone (an owner without the notion counts as open). */
export function isOpen(owner: unknown): boolean {
  return (owner as { isOpen?: boolean }).isOpen !== false;
}

/** An entry whose worker is made by `make` (the worker's processor may use the entry). */
export function workerEntry<R>(ref: R, make: (entry: WorkerEntry<R>) => Worker): WorkerEntry<R> {
  let closingNow = (): void => {};
  const closing = new Promise<void>((r) => (closingNow = r));
  const entry: WorkerEntry<R> = { ref, worker: undefined as unknown as Worker, members: [], rr: 0, closing, closingNow, freed: [] };
  entry.worker = make(entry);
  return entry;
}

/**
 * A job a worker fetched but has no member for (its last member left while
 * the job was being fetched, e.g. the next job BullMQ hands over with the
 * previous one's completion or failure; or the node is stopping): back to
 * the head of the wait list. Not a failed attempt: it was never delivered
 * (with `attempts: 1` a failure would dead-letter it). And never left active:
 * BullMQ skips a failed job's move once the worker's connection is closing,
 * and the job would wait for its lock to expire and a stalled check (30 to
 * 60 s). Waits until the worker stops fetching first, so that it does not
 * fetch the job straight back. Throws BullMQ's WaitingError (the job has
 * been moved: BullMQ leaves it alone); `onError` hears a failed move.
 */
export async function giveBack(closing: Promise<void>, job: Job, token: string | undefined, onError: (e: unknown) => void): Promise<never> {
  await closing;
  try {
    await job.moveToWait(token);
  } catch (e) {
    onError(e);
  }
  throw new WaitingError();
}

/**
 * Workers being closed, so that a node's stop waits for them before its
 * Redis connections go. Closed gracefully: BullMQ then waits for the jobs
 * they hold to be completed, failed or given back (with force, or once the
 * worker's connection is closing, it skips those moves: jobs stay active).
 */
export class WorkerClosings {
  private readonly pending = new Map<Worker, Promise<void>>();

  close(worker: Worker, onClosing?: () => void): void {
    const closing = closeWorker(worker, false, undefined, onClosing);
    this.pending.set(worker, closing);
    void closing.finally(() => this.pending.delete(worker));
  }

  /**
   * Resolves when every worker closing now has closed, or after `ms` (one
   * that cannot finish, Redis down, must not hold a stop). Those still
   * closing then give up the moves of the jobs they hold (abandonMoves: the
   * jobs stay active, as with a forced close), before the caller drops
   * their Redis connection.
   */
  async settled(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([Promise.allSettled([...this.pending.values()]), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    for (const w of this.pending.keys()) abandonMoves(w);
  }
}

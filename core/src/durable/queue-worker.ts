import { WaitingError, type Job, type Worker } from 'bullmq';
import type { Subscription } from '../subscriber.js';
import { StoreError } from '@meshbus/proto';
import { abandonMoves, closeWorker, unblockClose } from './close-worker.js';
import type { RedisClient } from './redis-connect.js';
import { readStoredFrame } from './stored-frame.js';
import { unreadableReason } from './readable-job.js';

/** The event frame of a job read back from Redis (`data.f`, base64); StoreError MB_ERR_STORE_CORRUPT when it is not one. */
export function jobFrame(data: unknown): Uint8Array {
  const why = unreadableReason(data);
  if (why !== undefined) throw new StoreError('MB_ERR_STORE_CORRUPT', why);
  const f = (data as { f?: unknown } | null)?.f;
  if (typeof f !== 'string') throw new StoreError('MB_ERR_STORE_CORRUPT', 'job has no frame');
  const bytes = Buffer.from(f, 'base64');
  readStoredFrame(bytes);
  return bytes;
}

/**
 * True when BullMQ will not try `job` again after this failure: its attempts
 * are used up, or the failure is unrecoverable, as BullMQ makes a job that
 * stalled more than `maxStalledCount` times (its holder's lock expired
 * twice: a node killed, a node cut from Redis past the lock) whatever its
 * attempts. Such a job is dead-lettered (a delayed publish: its quota room
 * given back); before, only used-up attempts counted, and a job failed for
 * its stalls was removed (removeOnFail) without a dead letter: an
 * acknowledged event lost without a trace.
 */
export function givenUp(job: Job, err: Error | undefined): boolean {
  return job.attemptsMade >= (job.opts.attempts ?? 1) || err?.name === 'UnrecoverableError';
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
  private lost!: () => void;
  /** Resolves once a stop found Redis lost: closes still waiting for their worker to be ready stop waiting (it will not be). */
  private readonly gone = new Promise<void>((r) => (this.lost = r));

  /** `conn`: the workers' Redis connection (BullMQ duplicates it for each worker's blocking connection). */
  constructor(private readonly conn: () => RedisClient) {}

  private redisUp(): boolean {
    return this.conn().status === 'ready';
  }

  /**
   * Closes `worker` in the background. With Redis down the close is forced
   * and does not wait for the worker's connections to be ready: nothing can
   * be moved without Redis anyway (its jobs stay active until their lock
   * expires, as abandonMoves leaves them), and BullMQ's graceful close first
   * waits for its blocking connection's 'end', which ioredis never emits for
   * a connection between two reconnect attempts (disconnect() clears the
   * reconnect timer and nothing else). That close never finished: the
   * worker's lock-renewal timer (every 7.5 s) rearmed for ever and kept a
   * process whose node had closed alive (bin `meshbus start` hid it with
   * process.exit; an embedding program, a test runner or a --workers
   * worker did not exit).
   */
  close(worker: Worker, onClosing?: () => void): void {
    const closing = closeWorker(worker, { force: () => !this.redisUp(), readyWaitMs: this.redisUp() ? undefined : 0, lost: this.gone, onClosing });
    this.pending.set(worker, closing);
    void closing.finally(() => this.pending.delete(worker));
  }

  /**
   * Resolves when every worker closing now has closed, after `ms`, or as
   * soon as the Redis connection is lost (one that cannot finish must not
   * hold a stop). Those still closing then give up the moves of the jobs
   * they hold (abandonMoves: the jobs stay active, as with a forced close),
   * before the caller drops their Redis connection; with Redis down, their
   * fetch loops are unblocked too (unblockClose) so that their closes end.
   *
   * Why the loss ends the wait: a stop that began while Redis was up and
   * lost it during the wait (SIGTERM as Redis died) waited the whole `ms`
   * (STOP_WAIT_MS, 5 s) for closes that could no longer finish, then left
   * them waiting for ever with their timers armed.
   */
  async settled(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const conn = this.conn();
    let lost = (): void => {};
    await Promise.race([
      Promise.allSettled([...this.pending.values()]),
      new Promise<void>((r) => {
        timer = setTimeout(r, ms);
        lost = r;
        conn.once('close', lost);
      }),
    ]);
    clearTimeout(timer);
    conn.off('close', lost);
    const down = !this.redisUp();
    if (down) this.lost();
    for (const w of this.pending.keys()) {
      abandonMoves(w);
      if (down) unblockClose(w);
    }
  }
}

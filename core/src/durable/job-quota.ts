import { StoreError } from '@meshbus/proto';

/** Reads the jobs not yet done in one work queue (BullMQ's counts in Redis: waiting, active, delayed, prioritized, paused). */
export type JobsNotDone = (queue: string) => Promise<number>;

/** A queue's count is read again at least this often while it is published to, ms. */
const REREAD_MS = 1000;
/** A queue found full is read again at most this often, ms: a publisher hammering it costs no Redis call per event. */
const FULL_REREAD_MS = 100;

interface QueueCount {
  /** Jobs not done at the last read. */
  jobs: number;
  /** Jobs this node added (enqueue settled) since that read was sent: they may or may not be in `jobs`. */
  added: number;
  /** Jobs this node admitted whose enqueue has not settled: not in Redis yet. */
  pending: number;
  /** When it was read (Date.now()); 0: never. */
  at: number;
  /** Read again once the estimate (jobs + added + pending) reaches this. */
  nextRead: number;
  /** The read in progress: concurrent publishes share it. */
  reading?: Promise<void>;
}

/**
 * Jobs per durable work queue (SPEC 15.8, `queues.maxJobs`): a
 * queue whose consumers are all offline grew Redis by every event published
 * to it, without bound. Past the bound a publish that would add a job is
 * refused with StoreError MB_ERR_STORE_FULL before anything is written (no
 * history, no live delivery, no job in any queue).
 *
 * BullMQ counts a queue's jobs in Redis, so the bound is mesh-wide. Reading
 * the count costs a Redis call, so a node reads it again only as its own
 * adds approach the bound (after an eighth of the room left, and at least
 * once a second): far from the bound that is one read per thousands of
 * publishes; near it, one per publish (at most every 100 ms once full).
 * Check and count are one synchronous step on a node, so a node never takes
 * a queue past the bound; several nodes adding at once between their reads
 * can, by at most one job per publishing node. The count errs the other way
 * too: a job whose add settles while the count is read may be counted twice,
 * so under concurrent publishes a queue may be refused a few jobs early.
 * Every job not done counts, those being delivered too: one whose delivery
 * fails goes back to the queue, so leaving them out let a queue pass the
 * bound by the jobs in delivery.
 */
export class JobQuota {
  private readonly counts = new Map<string, QueueCount>();

  constructor(
    private readonly max: number,
    private readonly notDone: JobsNotDone,
    private readonly refused: { jobs: number },
  ) {}

  /**
   * Takes room for one job in each of `queues`; rejects with StoreError
   * MB_ERR_STORE_FULL when one of them holds `max` jobs (nothing taken), or
   * with Redis's error.
   */
  async admit(queues: readonly string[]): Promise<void> {
    const now = Date.now();
    for (const q of queues) {
      const c = this.countOf(q);
      const n = estimate(c);
      if (n >= this.max ? now - c.at >= FULL_REREAD_MS : n >= c.nextRead || now - c.at >= REREAD_MS) await this.read(q, c);
    }
    // After every read: check all, then take room in all, with no await between (one step on this node).
    for (const q of queues) {
      const c = this.countOf(q);
      if (estimate(c) >= this.max) {
        this.refused.jobs++;
        // Not named: the publisher may not know the queue (another client's pattern and group); the node's log names them.
        throw new StoreError('MB_ERR_STORE_FULL', `a durable queue of this topic holds ${this.max} jobs not yet done (queues.maxJobs): its consumers are behind or offline`);
      }
    }
    for (const q of queues) this.countOf(q).pending++;
  }

  /** The queue named so is forgotten (no job is added to it any more): its count goes, unless a publish still holds room in it. */
  forget(q: string): void {
    const c = this.counts.get(q);
    if (c !== undefined && c.pending === 0 && c.reading === undefined) this.counts.delete(q);
  }

  /** The jobs admitted for `queues` were added, or will not be (the publish failed): call once per admit that resolved. */
  settled(queues: readonly string[]): void {
    for (const q of queues) {
      const c = this.counts.get(q);
      if (c === undefined || c.pending === 0) continue;
      c.pending--;
      c.added++;
    }
  }

  private countOf(q: string): QueueCount {
    let c = this.counts.get(q);
    if (c === undefined) {
      c = { jobs: 0, added: 0, pending: 0, at: 0, nextRead: 0 };
      this.counts.set(q, c);
    }
    return c;
  }

  private read(q: string, c: QueueCount): Promise<void> {
    if (c.reading) return c.reading;
    // Adds settled before the read is sent are in what it reads; later ones may not be: kept (counted twice at worst).
    const before = c.added;
    c.reading = this.notDone(q).then(
      (jobs) => {
        c.reading = undefined;
        // What Redis says is a number or it is taken as full (never trusted into a larger bound).
        c.jobs = Number.isSafeInteger(jobs) && jobs >= 0 ? jobs : this.max;
        c.added -= before;
        c.at = Date.now();
        c.nextRead = estimate(c) + Math.max(1, Math.floor((this.max - estimate(c)) / 8));
      },
      (e: unknown) => {
        c.reading = undefined;
        throw e;
      },
    );
    return c.reading;
  }
}

/** Jobs a queue may hold now, as this node knows: never fewer than Redis has. */
function estimate(c: QueueCount): number {
  return c.jobs + c.added + c.pending;
}

import type { RedisClient } from './redis-connect.js';

/** Members of a rule's topic set looked at per pass (SSCAN COUNT, then one EXISTS each). */
const PASS_MEMBERS = 1000;
/** A pass that freed nothing is not run again for the same set sooner than this, ms. */
const IDLE_PASS_EVERY_MS = 1000;

/**
 * Gives back the room of expired topics in a rule's topic set
 * (`<prefix>tp:<pattern>`, SPEC 15.8 `maxTopics`).
 *
 * A topic of a rule whose history ages out (`history.maxAgeMs`, no latest
 * value) has keys that expire with its last event (the append script sets
 * their TTL): once its meta key is gone the topic holds nothing, and its
 * place in the set is free. Before, the set kept every topic the rule ever
 * saw: a rule for `orders.<id>` with a day of history refused every new
 * order for good after its 10,000th, though nothing of the old ones was left.
 *
 * Run when an admission finds the set full: a pass scans the next
 * PASS_MEMBERS members (a cursor per set, so successive passes go round the
 * whole set), removes those whose meta key is gone, and puts back any a
 * write recreated meanwhile. The keys are in other slots than the set's
 * (each topic's keys are tagged by its topic), so this cannot be one
 * script: the put-back closes the gap a write between the check and the
 * removal would leave.
 */
export class TopicReclaim {
  private readonly cursors = new Map<string, string>();
  private readonly passes = new Map<string, Promise<number>>();
  private readonly idleUntil = new Map<string, number>();

  constructor(
    private readonly redis: RedisClient,
    /** The meta key of a topic (HistoryStore.metaKey): it exists while the topic holds anything. */
    private readonly metaKey: (topic: string) => string,
  ) {}

  /** One pass over `set` (shared by callers meanwhile); resolves with the topics it freed. Rejects with Redis's error. */
  reclaim(set: string): Promise<number> {
    let p = this.passes.get(set);
    if (p) return p;
    if (performance.now() < (this.idleUntil.get(set) ?? 0)) return Promise.resolve(0);
    p = this.pass(set).finally(() => this.passes.delete(set));
    this.passes.set(set, p);
    return p;
  }

  private async pass(set: string): Promise<number> {
    const members: string[] = [];
    let cursor = this.cursors.get(set) ?? '0';
    do {
      const [next, batch] = await this.redis.sscan(set, cursor, 'COUNT', PASS_MEMBERS);
      cursor = next;
      members.push(...batch);
    } while (cursor !== '0' && members.length < PASS_MEMBERS);
    this.cursors.set(set, cursor);
    const gone = await this.absent(members);
    if (gone.length > 0) {
      await this.redis.srem(set, ...gone);
      // Written meanwhile (its keys are back): it holds events again, and counts.
      const stillGone = new Set(await this.absent(gone));
      const back = gone.filter((t) => !stillGone.has(t));
      if (back.length > 0) await this.redis.sadd(set, ...back);
      if (gone.length > back.length) return gone.length - back.length;
    }
    this.idleUntil.set(set, performance.now() + IDLE_PASS_EVERY_MS);
    return 0;
  }

  private async absent(topics: string[]): Promise<string[]> {
    const found = await Promise.all(topics.map((t) => this.redis.exists(this.metaKey(t))));
    return topics.filter((_, i) => found[i] === 0);
  }
}

import { hasWildcard, isMeshbusError, topicMatches, type Frame } from '@meshbus/proto';
import type { NodeStats } from '../stats.js';
import type { Logger } from '../logger.js';
import { storeErr, storeFailure } from './connection-error.js';
import { throttled } from '../told-recently.js';
import { withPosition } from './frames.js';
import type { HistoryStore, LatestValue } from './history-store.js';
import type { DurableMatcher, ResolvedTopicRule } from './store-config.js';
import type { SequencedOwner } from './recovery.js';

/**
 * Latest value: a new subscriber to a pattern gets, at once, the last event
 * of every matching topic whose durable rule says `latest: true` (stored by
 * the append script in one hash per rule). Each is a sid-addressed delivery
 * with its position, so the client can tell it from later live events.
 * Never rejects for bad data: a Redis failure (down, no answer within the
 * store deadline) is logged and told to the subscriber as a non-fatal ERROR
 * MB_ERR_STORE_UNAVAILABLE on its sid (the values not yet sent are not
 * sent; the live subscription stays, SPEC 15.4), unreadable values are
 * skipped with a notice.
 */
export async function sendLatest(
  owner: SequencedOwner,
  sid: number,
  pattern: string,
  matcher: DurableMatcher<NonNullable<unknown>>,
  store: HistoryStore,
  isCurrent: () => boolean,
  logger: Logger,
  stats: NodeStats,
  /** Takes a replay slot for a paged read (throws SessionError MB_ERR_TOO_MANY_REPLAYS); returns its release. */
  acquire: () => () => void = () => () => {},
  /** The node's gate for one-topic reads (a literal SUB): waited for, not refused. */
  gate: ReadGate = UNGATED,
): Promise<number> {
  let n = 0;
  // Only rules a topic of this pattern can fall under are read: a SUB elsewhere costs Redis nothing.
  const rules = matcher.latestRules().filter((r) => patternsOverlap(pattern, r.pattern));
  if (rules.length === 0) return 0;
  const literal = !hasWildcard(pattern);
  let release = (): void => {};
  if (!literal) {
    try {
      release = acquire();
    } catch (e) {
      if (!isMeshbusError(e)) throw e;
      owner.notice(sid, e.code, `latest values not sent: ${e.message}`);
      return 0;
    }
  }
  try {
    for (const rule of rules) {
      let cursor = '0';
      do {
        // The next page only once the connection has drained: a client that does not read holds one page.
        if (!literal && cursor !== '0') await drained(owner);
        if (!isCurrent() || !owner.isOpen) return n;
        let values: LatestValue[];
        try {
          if (literal) {
            // One read per SUB still current, once its connection has drained, within the node's gate: re-sent SUBs of a
            // topic with a 1 MiB value each read it whole (1,000 SUBs: ~990 MB of Redis output buffers, node RSS +130 MB).
            await drained(owner);
            const leave = await gate.enter();
            let v: LatestValue | undefined;
            try {
              if (!isCurrent() || !owner.isOpen) return n;
              v = await store.latestOf(rule, pattern);
            } finally {
              leave();
            }
            values = v ? [v] : [];
            cursor = '0';
          } else {
            const page = await store.latestPage(rule, cursor, LATEST_PAGE);
            values = page.values;
            cursor = page.cursor;
          }
        } catch (e) {
          throttled(logger).warn({ pattern, ...storeErr(e) }, 'latest values unavailable', undefined, storeFailure(e));
          // Told, not only logged: a subscriber otherwise could not tell "no value stored" from "the store did not answer".
          if (isCurrent() && owner.isOpen) owner.notice(sid, 'MB_ERR_STORE_UNAVAILABLE', `latest values ${n > 0 ? `after the first ${n} ` : ''}not sent: ${storeFailure(e)}`);
          return n;
        }
        values.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
        for (const v of values) {
          // Each value only once the connection has drained below its mark: a page (32 values of up to
          // maxPayload each) pushed at once overran maxPending and closed a subscriber that reads as a
          // slow consumer (40 values of 1 MB: closed after 8), again at every resubscribe.
          if (!literal) await drained(owner);
          if (!isCurrent() || !owner.isOpen) return n;
          if (deliverLatest(owner, sid, pattern, matcher, rule, v, logger, stats)) n++;
        }
      } while (cursor !== '0');
    }
    return n;
  } finally {
    release();
  }
}

/**
 * At most `max` one-topic latest reads in flight on the node, each at most
 * the largest event stored (HistoryStore's maxEntryBytes): the rest wait
 * their turn in order (a literal SUB is never refused its latest value for
 * others' reads, as a paged one is for replay slots).
 */
export class ReadGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly max: number) {}

  /** Resolves with the function that gives the turn back, once it is this caller's turn. */
  async enter(): Promise<() => void> {
    if (this.running >= this.max) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    };
  }
}

const UNGATED = new ReadGate(Infinity);

/** Topics per SSCAN page of a rule's topic set (a hint to Redis; a page holds about this many values). */
const LATEST_PAGE = 32;

/** Sends one latest value to `sid` if it is the pattern's and the rule's; true when delivered. */
function deliverLatest(owner: SequencedOwner, sid: number, pattern: string, matcher: DurableMatcher<NonNullable<unknown>>, rule: ResolvedTopicRule, v: LatestValue, logger: Logger, stats: NodeStats): boolean {
  if (!topicMatches(pattern, v.topic)) return false;
  // The first matching rule decides: skip topics another rule owns.
  if (matcher.forTopic(v.topic)?.rule !== rule) return false;
  // Read back from Redis: an unreadable value is skipped and the subscriber told (ERROR MB_ERR_STORE_CORRUPT on its sid).
  let f: Frame | undefined;
  let problem = 'corrupt' in v ? v.corrupt : '';
  if (!('corrupt' in v)) {
    try {
      f = withPosition(v.frame, v.position);
    } catch (e) {
      problem = (e as Error).message;
    }
  }
  if (f === undefined) {
    stats.store.corrupt++;
    const message = `latest value of "${v.topic}" skipped: ${problem}`;
    throttled(logger).warn({ pattern, sid }, message, 'latest value corrupt');
    owner.notice(sid, 'MB_ERR_STORE_CORRUPT', message);
    return false;
  }
  owner.deliver(f, sid);
  return true;
}

/** Resolves once the connection's outbound queue is below its mark (or it went away). */
function drained(owner: SequencedOwner): Promise<void> {
  if (!owner.congested || !owner.isOpen) return Promise.resolve();
  return new Promise((resolve) => owner.addWaiter({ unblock: () => resolve() }));
}

/**
 * True when some topic matches both patterns (`*` one token, `>` one or
 * more trailing tokens). Patterns are valid (SPEC 11), so `>` is last.
 */
export function patternsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    if (i === x.length || i === y.length) return x.length === y.length;
    const p = x[i]!;
    const q = y[i]!;
    if (p === '>' || q === '>') return true;
    if (p !== '*' && q !== '*' && p !== q) return false;
  }
}

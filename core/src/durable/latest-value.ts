import { topicMatches, type Frame } from '@meshbus/proto';
import type { NodeStats } from '../stats.js';
import type { Logger } from '../logger.js';
import { withPosition } from './frames.js';
import type { HistoryStore } from './history-store.js';
import type { DurableMatcher } from './store-config.js';
import type { SequencedOwner } from './recovery.js';

/**
 * Latest value: a new subscriber to a pattern gets, at once, the last event
 * of every matching topic whose durable rule says `latest: true` (stored by
 * the append script in one hash per rule). Each is a sid-addressed delivery
 * with its position, so the client can tell it from later live events.
 * Never rejects for bad data: Redis failures are logged, unreadable values
 * skipped with a notice.
 */
export async function sendLatest(
  owner: SequencedOwner,
  sid: number,
  pattern: string,
  matcher: DurableMatcher<unknown>,
  store: HistoryStore,
  isCurrent: () => boolean,
  logger: Logger,
  stats: NodeStats,
): Promise<number> {
  let n = 0;
  for (const rule of matcher.latestRules()) {
    let values;
    try {
      values = await store.latest(rule);
    } catch (e) {
      logger.warn({ pattern, err: String(e) }, 'latest values unavailable');
      return n;
    }
    values.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    for (const v of values) {
      if (!isCurrent() || !owner.isOpen) return n;
      if (!topicMatches(pattern, v.topic)) continue;
      // The first matching rule decides: skip topics another rule owns.
      if (matcher.forTopic(v.topic)?.rule !== rule) continue;
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
        logger.warn({ pattern, sid }, message);
        owner.notice(sid, 'MB_ERR_STORE_CORRUPT', message);
        continue;
      }
      owner.deliver(f, sid);
      n++;
    }
  }
  return n;
}

import type { Position } from '@meshbus/proto';
import { isEpoch, readStoredFrame } from './stored-frame.js';

/*
 * Reading a topic's latest value back (HistoryStore.latestOf, latestPage):
 * what Redis holds is untrusted, checked before the node uses it.
 */

/** The latest value of one topic of a `latest` rule; `corrupt` says why an unreadable one was skipped. */
export type LatestValue = { topic: string; position: Position; frame: Uint8Array } | { topic: string; corrupt: string };

/**
 * KEYS: a topic's meta hash. ARGV: the largest value to return. → the
 * latest value (`l`), nil, or its length when longer than ARGV[1] (never
 * its bytes: a 100 MB value took node RSS from 103 to 479 MB).
 */
export const LATEST = `
local n = redis.call('HSTRLEN', KEYS[1], 'l')
if n > tonumber(ARGV[1]) then return n end
return redis.call('HGET', KEYS[1], 'l')
`;

/** A latest-hash value `<epoch>|<offset>|<frame>` read back from Redis (untrusted). */
export function parseLatest(topic: string, v: Buffer): LatestValue {
  const a = v.indexOf(0x7c);
  const b = a < 0 ? -1 : v.indexOf(0x7c, a + 1);
  if (b < 0) return { topic, corrupt: 'not <epoch>|<offset>|<frame>' };
  const epoch = v.subarray(0, a).toString();
  const offset = Number(v.subarray(a + 1, b).toString());
  if (!isEpoch(epoch) || !Number.isSafeInteger(offset) || offset <= 0) return { topic, corrupt: 'malformed position' };
  const frame = v.subarray(b + 1);
  try {
    readStoredFrame(frame, topic);
  } catch (e) {
    return { topic, corrupt: (e as Error).message };
  }
  return { topic, position: { epoch, offset }, frame };
}

import { topicProblem } from '@meshbus/proto';

/** A member of the set `<prefix>queues`: one durable queue (pattern, group). */
export function queueMember(pattern: string, group: string): string {
  return JSON.stringify([pattern, group]);
}

/**
 * [pattern, group] of a member read back from the set: untrusted (a bad
 * pattern would throw in the matcher), undefined when it is not a valid one.
 */
export function parseQueueMember(m: string): [string, string] | undefined {
  let pg: unknown;
  try {
    pg = JSON.parse(m);
  } catch {
    return undefined;
  }
  if (!Array.isArray(pg) || typeof pg[0] !== 'string' || typeof pg[1] !== 'string' || pg[1].length === 0) return undefined;
  if (topicProblem(pg[0], true)) return undefined;
  return [pg[0], pg[1]];
}

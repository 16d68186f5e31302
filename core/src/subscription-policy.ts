import { TopicTrie } from '@meshbus/proto';
import type { Permissions } from './auth/permissions.js';
import { ReservedFilter, isOwnInbox, isTracePattern, reservedSubscribeProblem, startsWithWildcard } from './auth/reserved-topics.js';
import type { Subscription } from './subscriber.js';

/**
 * Why client `clientId` (with token permissions `p`, if any) may not
 * subscribe to `pattern`: reserved prefixes first, then the permissions; or
 * undefined when it may. The own inbox needs no allow rule (request/reply
 * works under any allow list); a deny still applies.
 */
export function subscribeProblem(pattern: string, clientId: string, p: Permissions | undefined): string | undefined {
  const reserved = reservedSubscribeProblem(pattern, clientId, (x) => p !== undefined && p.explicitlyAllowsSubscribe(x));
  if (reserved !== undefined) return reserved;
  if (!p) return undefined;
  if (isOwnInbox(pattern, clientId) ? p.deniesSubscribe(pattern) : !p.canSubscribe(pattern)) return `subscribe to "${pattern}"`;
  return undefined;
}

/**
 * What a connection's subscriptions make of its deliveries, kept up to date
 * in O(1) per SUB and UNSUB (a scan of every subscription per SUB let one
 * client holding 10,000 of them make each re-SUB cost 10,000 steps): while
 * some subscription starts with a wildcard, a filter keeps other clients'
 * inboxes and traces not subscribed by name out. The trace patterns live in
 * a trie the filter reads (O(pattern depth) per SUB, UNSUB and hop record;
 * the filter is never rebuilt). (The slow-consumer policy is per
 * subscription, decided per event by the routing table: DropTag.)
 */
export class DeliveryPolicy {
  private wide = 0;
  /** Trace patterns held (by count); made on the first one. */
  private traces: Map<string, number> | undefined;
  /** The same patterns as a trie, for the filter; made on the first one. */
  private traceTrie: TopicTrie<true> | undefined;
  private filter: ReservedFilter | undefined;
  /** `ownInbox`: what the owner's inbox topics start with (ReservedFilter). */
  constructor(private readonly ownInbox: string) {}

  add(s: Subscription): void {
    this.tally(s, 1);
  }

  remove(s: Subscription): void {
    this.tally(s, -1);
  }

  /** The reserved-topic filter, or undefined while no subscription starts with a wildcard. */
  get reserved(): ReservedFilter | undefined {
    if (this.wide === 0) return undefined;
    return (this.filter ??= new ReservedFilter(this.ownInbox, (topic) => this.traced(topic)));
  }

  /** Whether a held trace pattern matches `topic`: O(topic depth), whatever the number held. */
  private traced(topic: string): boolean {
    const t = this.traceTrie;
    if (t === undefined || t.size === 0) return false;
    let hit = false;
    t.match(topic, () => {
      hit = true;
    });
    return hit;
  }

  private tally(s: Subscription, d: 1 | -1): void {
    if (startsWithWildcard(s.pattern)) {
      this.wide += d;
    } else if (isTracePattern(s.pattern)) {
      const traces = (this.traces ??= new Map());
      const n = (traces.get(s.pattern) ?? 0) + d;
      if (n > 0) traces.set(s.pattern, n);
      else traces.delete(s.pattern);
      if (n === 1 && d === 1) (this.traceTrie ??= new TopicTrie()).add(s.pattern, true);
      else if (n === 0) this.traceTrie?.remove(s.pattern, true);
    }
  }
}

import type { Permissions } from './auth/permissions.js';
import { ReservedFilter, isOwnInbox, isTracePattern, reservedSubscribeProblem, startsWithWildcard } from './auth/reserved-topics.js';
import type { SlowPolicy, Subscription } from './subscriber.js';

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
 * What a connection's subscriptions make of its deliveries: it drops events
 * only when every subscription asked for 'drop'; and while some subscription
 * starts with a wildcard, a filter keeps other clients' inboxes and unknown
 * traces out (undefined otherwise).
 */
export function deliveryPolicy(subs: Iterable<Subscription>, clientId: string): { policy: SlowPolicy; reserved: ReservedFilter | undefined } {
  let policy: SlowPolicy | undefined;
  let wide = false;
  const traces: string[] = [];
  for (const s of subs) {
    if (s.slow === 'disconnect' || policy === undefined) policy = s.slow;
    if (startsWithWildcard(s.pattern)) wide = true;
    else if (isTracePattern(s.pattern)) traces.push(s.pattern);
  }
  return { policy: policy ?? 'disconnect', reserved: wide ? new ReservedFilter(clientId, traces) : undefined };
}

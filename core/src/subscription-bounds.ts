import type { NodeOptions } from './options.js';
import type { RoutingTable } from './routing-table.js';
import type { Subscription } from './subscriber.js';
import { subscriptionWeight, weightOf } from './subscription-weight.js';

/** The bounds a client SUB is checked against (counted per bound in `stats.subscriptionsRefused`). */
export type SubscriptionBound = 'connection' | 'node' | 'host';

/**
 * Which bound a client's SUB would pass, if any: `maxSubscriptions` for the
 * connection (`old`: the subscription the SUB replaces on its sid), then the node's `maxNodeSubscriptions` and the host's
 * `maxSubscriptionsPerIp`, which count the routing table: they apply to a
 * SUB that `adds` to it (not a replacement of a subscription in it, nor a
 * durable queue member, which is never in it; a member replaced by an
 * ordinary subscription does add, else SUB durable + SUB plain on one sid
 * went past both bounds). Per connection alone, enough connections would
 * hold the heap; without the host's share, one host could take the node's
 * whole bound from everyone else. Returns the bound and the refusal's text.
 *
 * Each bound counts weight (subscription-weight.ts), not subscriptions: a
 * SUB of `weight` fits while what is held plus it stays within the bound (a
 * SUB replacing one of the connection's sids needs only what it weighs more
 * than the one it replaces). Counted one per SUB, a 32-token pattern with a
 * long queue name held ~9 times the memory the limits were sized for.
 */
export function subscriptionRefusal(
  o: Pick<Required<NodeOptions>, 'maxSubscriptions' | 'maxNodeSubscriptions' | 'maxSubscriptionsPerIp'>,
  table: RoutingTable,
  sub: { connectionWeight: number; old: Subscription | undefined; pattern: string; queue: string | undefined; adds: boolean; host: string | undefined },
): { bound: SubscriptionBound; message: string } | undefined {
  const w = subscriptionWeight(sub.pattern, sub.queue);
  const replaced = sub.old === undefined ? 0 : weightOf(sub.old);
  const weighs = w > 1 ? ` (this SUB weighs ${w}: subscriptions count by weight)` : '';
  if (w > replaced && sub.connectionWeight - replaced + w > o.maxSubscriptions) return { bound: 'connection', message: `limit ${o.maxSubscriptions}${weighs}` };
  if (!sub.adds) return undefined;
  if (table.clientWeight + w > o.maxNodeSubscriptions) return { bound: 'node', message: `node limit ${o.maxNodeSubscriptions}${weighs}` };
  if (sub.host !== undefined && table.hostWeight(sub.host) + w > o.maxSubscriptionsPerIp) return { bound: 'host', message: `limit ${o.maxSubscriptionsPerIp} per host${weighs}` };
  return undefined;
}

import type { NodeOptions } from './options.js';
import type { RoutingTable } from './routing-table.js';

/** The bounds a client SUB is checked against (counted per bound in `stats.subscriptionsRefused`). */
export type SubscriptionBound = 'connection' | 'node' | 'host';

/**
 * Which bound a client's SUB would pass, if any: `maxSubscriptions` for the
 * connection (a SUB replacing one of its sids takes no room), then the
 * node's `maxNodeSubscriptions` and the host's `maxSubscriptionsPerIp`,
 * which count the routing table: they apply to a SUB that `adds` to it
 * (not a replacement of a subscription in it, nor a durable queue member,
 * which is never in it; a member replaced by an ordinary subscription does
 * add, else SUB durable + SUB plain on one sid went past both bounds).
 * Per connection alone, enough connections would hold the heap; without
 * the host's share, one host could take the node's whole bound from
 * everyone else. Returns the bound and the refusal's text.
 */
export function subscriptionRefusal(
  o: Pick<Required<NodeOptions>, 'maxSubscriptions' | 'maxNodeSubscriptions' | 'maxSubscriptionsPerIp'>,
  table: RoutingTable,
  sub: { connectionCount: number; replaces: boolean; adds: boolean; host: string | undefined },
): { bound: SubscriptionBound; message: string } | undefined {
  if (!sub.replaces && sub.connectionCount >= o.maxSubscriptions) return { bound: 'connection', message: `limit ${o.maxSubscriptions}` };
  if (!sub.adds) return undefined;
  if (table.clientSubscriptions >= o.maxNodeSubscriptions) return { bound: 'node', message: `node limit ${o.maxNodeSubscriptions}` };
  if (sub.host !== undefined && table.hostSubscriptions(sub.host) >= o.maxSubscriptionsPerIp) return { bound: 'host', message: `limit ${o.maxSubscriptionsPerIp} per host` };
  return undefined;
}

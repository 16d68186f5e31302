import { ConfigError } from '@meshbus/core';
import { resolveClusterOptions, type ClusterOptions, type ResolvedClusterOptions } from './options.js';
import { leafIdentity } from './leaf-keys.js';
import { clientAddressProblem, clusterAddressProblem, nameProblem } from './peer-info.js';

/**
 * Every check of a cluster node's options that needs no open port: the
 * options themselves (resolveClusterOptions), the node's name and a given
 * advertised address as peers check them (peer-info.ts). ClusterNode runs it
 * in its constructor; a launcher runs it before the node's client port opens
 * (bin/start.ts), so a bad --seeds, --gateways, --advertise or --client-advertise exits 2 with
 * nothing ever listening. Before, `meshbus start` opened the client port,
 * then the cluster refused its options and the process exited: for a moment
 * clients could connect to a node that was about to exit. Throws ConfigError.
 */
export function checkClusterOptions(options: ClusterOptions, nodeName: string, nodeId?: string, nodeIdInClientIds?: boolean): ResolvedClusterOptions {
  const o = resolveClusterOptions(options);
  // A leaf key makes the node's id (leaf-keys.ts): a hub refuses any other. Said here, not at every dial.
  if (o.leafKey !== undefined) {
    const made = leafIdentity(o.leafKey.key, o.leafKey.salt).id;
    if (made !== o.leafKey.id || (nodeId !== undefined && nodeId !== made)) throw new ConfigError(`a node with a leaf key needs the id leafIdentity() made from it (${made}): pass it as the node's id`);
    // Its hubs let it subscribe only to inboxes that start with its id (leaf-rules.ts): its clients' must.
    if (nodeIdInClientIds === false) throw new ConfigError('a node with a leaf key needs nodeIdInClientIds: its hubs take only inboxes that start with its id');
  }
  // Peers refuse a node whose name breaks the rule they check (peer-info.ts): say so now.
  const np = nameProblem(nodeName);
  if (np) throw new ConfigError(`node name cannot be used in a cluster: ${np}`);
  // Without `advertise` the address is host:<bound port>, known (and checked) only once the cluster port is bound.
  const ap = o.advertise === undefined ? undefined : clusterAddressProblem(o.advertise);
  if (ap) throw new ConfigError(`advertised cluster address "${o.advertise}": ${ap}`);
  // Peers refuse a link whose client address breaks their rule (peer-info.ts): say so now.
  const cp = o.clientAdvertise === undefined ? undefined : clientAddressProblem(o.clientAdvertise);
  if (cp) throw new ConfigError(`advertised client address "${o.clientAdvertise}": ${cp}`);
  return o;
}

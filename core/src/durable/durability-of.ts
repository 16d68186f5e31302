import type { MeshNode } from '../node.js';
import { Durability } from './durability.js';

/**
 * The node's durability as its concrete class (history store, queues, dead
 * letters), for tools and tests; undefined when the node runs without Redis
 * or before listen() loaded it. The node itself holds it only through the
 * extension seam (NodeExtension).
 */
export function durabilityOf(node: MeshNode): Durability | undefined {
  return node.durability instanceof Durability ? node.durability : undefined;
}

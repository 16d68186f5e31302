import { meshbus } from './meshbus.js';
import { nats } from './nats.js';
import { redis } from './redis.js';
import { relay } from './relay.js';
import type { Target, TargetName } from './types.js';

export * from './types.js';
export { useExternalMeshbus } from './meshbus.js';

const all: Record<TargetName, Target> = { meshbus, nats, redis, relay };

export function getTarget(name: TargetName): Target {
  const t = all[name];
  if (!t) throw new Error(`unknown target ${name}`);
  return t;
}

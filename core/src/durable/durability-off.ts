import { StoreError, type SubBody } from '@meshbus/proto';
import type { Logger } from '../logger.js';

// What a node without Redis needs to know about durability. Kept apart from
// durability.ts so that sessions and the node can refuse durable SUB fields
// and log what is off without loading ioredis or bullmq.

/** Features that need Redis, for the start-up log line. */
export const DURABLE_FEATURES = ['history', 'recovery', 'latest-value', 'durable-queues', 'delayed-publish', 'durable-acks'];

/** Says which features are off: the node runs without Redis. */
export function logDurabilityOff(logger: Logger): void {
  logger.info({ durability: 'off', off: DURABLE_FEATURES }, 'no redis configured: durable topics, recovery, latest values, durable queues and delayed publish are off');
}

/** SUB fields that need Redis, on a node without it: throws StoreError MB_ERR_STORE_UNAVAILABLE for `since` or `durable`. */
export function refuseWithoutRedis(body: SubBody): void {
  if (body.since !== undefined || body.durable === true) {
    throw new StoreError('MB_ERR_STORE_UNAVAILABLE', 'durability is off on this node (no redis configured)');
  }
}

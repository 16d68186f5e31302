import { FrameType, StoreError, refusalFrame, type Frame, type SubBody } from '@meshbus/proto';
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

/**
 * SUB fields that need Redis, on a node without it: throws StoreError
 * MB_ERR_NOT_DURABLE for `since` or `durable` (not MB_ERR_STORE_UNAVAILABLE:
 * no store will come back on this node, so retrying cannot help).
 */
export function refuseWithoutRedis(body: SubBody): void {
  if (body.since !== undefined || body.durable === true) {
    throw new StoreError('MB_ERR_NOT_DURABLE', `${body.since !== undefined ? 'since/recover' : 'durable queues'}: durability is off on this node (no redis configured)`);
  }
}

/** The delay (extension `d`, ms) a published frame asks for; 0 when none (or the block does not decode: the ingress checks refuse that). */
function delayOf(f: Frame): number {
  if (f.extLen === 0) return 0;
  try {
    return f.ext?.delay ?? 0;
  } catch {
    return 0;
  }
}

/**
 * A client PUB that asks for durability (ACK_REQUESTED, or a delay) on a
 * topic no durable rule or queue covers here (`durable` false; every topic
 * on a node without Redis): the refusal to send it, NACK MB_ERR_NOT_DURABLE
 * on its correlation when it asked for an ACK, else ERROR; undefined when
 * the event is an ordinary one the node routes. The refused event is not
 * delivered: an ACK would claim a durability it does not have, and a delay
 * cannot be honoured without a store (SPEC §15.2, §15.6).
 */
export function notDurableRefusal(f: Frame, durable: boolean, redis: boolean): Uint8Array | undefined {
  if (durable || f.type !== FrameType.PUB) return undefined;
  const delay = delayOf(f);
  if (!f.ackRequested && delay === 0) return undefined;
  const what = delay > 0 ? 'delayed publish' : 'acked publish';
  const why = redis ? `no durable rule covers "${f.topic}" on this node` : 'durability is off on this node (no redis configured)';
  const detail = `${what}: ${why}`;
  return refusalFrame('MB_ERR_NOT_DURABLE', f.correlation, f.ackRequested, detail);
}

// @meshbus/core/durable: loads ioredis and bullmq. A node loads this itself
// (listen(), only with `durable.redis`); import it to reach the store directly.
export { Durability, logDurabilityOff, refuseWithoutRedis, DURABLE_FEATURES, type DurableHost, type DurableSession } from './durability.js';
export { subAckFrame } from './frames.js';
export { durabilityOf } from './durability-of.js';
export { resolveDurable, MAX_WAIT_REPLICAS, DurableMatcher, type DurableOptions, type DurableTopic, type ResolvedDurable, type ResolvedTopicRule, type TopicDurability } from './store-config.js';
export { HistoryStore, MAX_REPLAY, type ReadResult, type StoredEvent } from './history-store.js';
export { Sequencer, type SequencedOwner } from './recovery.js';
export { WorkQueues } from './work-queue.js';
export { queueName, dlqName, bullPrefix, type QueueRef, type JobData } from './queue-names.js';
export { parseRedisTarget, redactUrl, type RedisTarget, type HostPort } from './redis-target.js';
export { connectRedis, waitForReplicas, type RedisClient } from './redis-connect.js';
export { withPosition, positionOf } from './frames.js';

import type { Queue, Worker } from 'bullmq';
import { probeCluster, type RedisClient } from './redis-connect.js';
import { readableJobs } from './readable-job.js';

/** What BullMQ keeps of a Redis connection (its RedisConnection): an EventEmitter. */
interface ConnectionEmitter {
  emit(event: string | symbol, ...args: unknown[]): boolean;
  listenerCount(event: string | symbol): number;
}

/**
 * BullMQ 5 reports a connection that failed to start by emitting 'error' on
 * its connection object, even after close() removed every listener; with
 * none, EventEmitter.emit throws, inside a promise handler. A queue or worker
 * closed while its connection was still starting (Redis silent, then gone:
 * the ready check or the version check's INFO in flight) so left an unhandled
 * rejection ("Connection is closed.", ECONNRESET), which ends a process that
 * embeds the node under Node's default rules. BullMQ 6.7.0 fixed it at the
 * source (RedisConnection emits only when something listens); this gives the
 * connection objects of `o` that rule (its `connection`, and a worker's
 * `blockingConnection`). Returns `o`.
 *
 * And `o` builds the jobs it reads back as ReadableJob (readable-job.ts): a
 * job whose stored hash is not JSON is dropped and counted, not an endless
 * 'error' with the job left active.
 */
export function quietConnections<T extends Queue | Worker>(o: T): T {
  readableJobs(o);
  for (const key of ['connection', 'blockingConnection']) {
    const c = (o as unknown as Record<string, ConnectionEmitter | undefined>)[key];
    if (c === undefined || typeof c.emit !== 'function') continue;
    const emit = c.emit;
    c.emit = function (this: ConnectionEmitter, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'error' && this.listenerCount('error') === 0) return false;
      return emit.call(this, event, ...args);
    };
  }
  return o;
}

/** BullMQ's wrapper of a worker's blocking connection (private in its typings): `client` resolves once it is initialized. */
interface BlockingClient {
  blockingConnection?: { client?: Promise<RedisClient> };
  closing?: unknown;
}

/**
 * quietConnections for a worker, and its blocking connection (BullMQ's
 * duplicate of the node's workers connection) probed like the node's own
 * connections (probeCluster) until the worker closes: with every server of
 * a Redis Cluster gone, ioredis's cluster subscriber of each such duplicate
 * picked a new node at each refused connection, a spinning loop per worker
 * for as long as the outage lasted. Returns `w`.
 */
export function guardWorker(w: Worker): Worker {
  quietConnections(w);
  const b = w as unknown as BlockingClient;
  b.blockingConnection?.client?.then(
    (c) => {
      if (b.closing) return;
      const stop = probeCluster(c);
      w.once('closed', stop);
    },
    () => {},
  );
  return w;
}

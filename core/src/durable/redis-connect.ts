import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { StoreError } from '@meshbus/proto';
import type { RedisTarget } from './redis-target.js';

/** A Redis client of any deployment: one server (or a Sentinel-managed primary) or a Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * Per-connection behaviour wanted by the caller (as RedisOptions for one
 * server); for a cluster they apply to every node connection, and
 * `enableOfflineQueue` to the cluster client too.
 */
export function connectRedis(target: RedisTarget, extra: RedisOptions): RedisClient {
  extra = { disconnectTimeout: DISCONNECT_WAIT_MS, ...extra };
  if (target.kind === 'single') return new Redis(target.url, { lazyConnect: false, ...extra });
  if (target.kind === 'sentinel') {
    return new Redis({
      sentinels: target.sentinels,
      name: target.name,
      db: target.db,
      username: target.username,
      password: target.password,
      lazyConnect: false,
      // A primary the sentinels demoted refuses writes (READONLY): reconnect, which asks them for the new one.
      // (Not ioredis's failoverDetector: its sentinel subscriptions outlive quit() and retry forever.)
      reconnectOnError: (e) => e.message.startsWith('READONLY'),
      ...extra,
    });
  }
  return new Cluster(target.nodes, {
    lazyConnect: false,
    enableOfflineQueue: extra.enableOfflineQueue ?? true,
    // Writes go to the primaries only: history is read right after it is written.
    scaleReads: 'master',
    // As one server's connection backs off (ioredis's retryStrategy, 50 ms more per attempt, at most 2 s);
    // ioredis's cluster default adds 2 ms per attempt from 100: ~10 attempts a second on every node
    // for a minute of an outage, per cluster connection (BullMQ's duplicates included).
    clusterRetryStrategy: (times: number) => Math.min(times * 50, 2000),
    redisOptions: { username: target.username, password: target.password, ...extra },
  });
}

/**
 * Makes 'error' listeners, one per connection, that when the server refuses
 * the SELECT of the URL's database (`--redis redis://host/99` with 16 there;
 * a user whose ACL denies SELECT) drop that connection (no reconnect) and
 * call `say` the first time. ioredis only emits that error and goes on in database 0:
 * before, the store's writes, acknowledged to publishers, landed in another
 * database than the operator named (another application's, perhaps) while
 * recovery read the named one. The error comes before ioredis's 'ready' (the
 * SELECT is answered before its ready check), so no command of the node's
 * reaches database 0; the connection never becomes ready, and durable
 * features stay off as while Redis is unreachable.
 */
export function refusedDatabaseGuard(say: (err: string) => void): (c: RedisClient) => (e: Error) => void {
  let said = false;
  return (c) => (e) => {
    // The node never sends SELECT itself (nor does BullMQ): a refused one is ioredis's at connect.
    if ((e as { command?: { name?: string } }).command?.name !== 'select') return;
    // A refusal that passes (BUSY: a script running; LOADING; NOAUTH while a password changes): connect again, still
    // before any command; only one that will not pass (no such database, an ACL without SELECT) turns the store off.
    if (!PERMANENT_SELECT_REFUSAL.test(e.message)) return void c.disconnect(true);
    dropConnection(c);
    if (!said) say(e.message);
    said = true;
  };
}

/**
 * `guard` (a refusedDatabaseGuard) on `c` and on every duplicate made of it,
 * and of those: BullMQ duplicates the node's connection for each worker's
 * blocking reads, and each duplicate SELECTs at every connect; unguarded, a
 * SELECT refused there (an ACL changed, a server restarted with fewer
 * databases) left that worker's connection in database 0. Returns `c`.
 */
export function guardDatabase(c: RedisClient, guard: (c: RedisClient) => (e: Error) => void): RedisClient {
  c.on('error', guard(c));
  const d = c as unknown as { duplicate(...args: unknown[]): RedisClient };
  const duplicate = d.duplicate;
  d.duplicate = (...args) => guardDatabase(duplicate.apply(c, args), guard);
  return c;
}

/** SELECT refusals that another attempt will get again: the index is past the server's databases, or the user may not SELECT. */
const PERMANENT_SELECT_REFUSAL = /DB index|invalid DB|NOPERM/i;

/** True for a Cluster client. */
export function isCluster(c: RedisClient): c is Cluster {
  return (c as Cluster).isCluster === true;
}

/**
 * Commands `c` sent and Redis has not answered, including those whose
 * caller stopped waiting (a store deadline, a commandTimeout): ioredis cannot
 * take a command back, so each holds its arguments (an event's bytes) until
 * Redis answers or the connection drops.
 */
export function commandsWaiting(c: RedisClient): number {
  if (!isCluster(c)) return c.commandQueue.length;
  let n = 0;
  for (const node of c.nodes()) n += node.commandQueue.length;
  return n;
}

/**
 * `WAIT replicas timeoutMs` for the writes this client made on the key's
 * shard: resolves with the number of replicas that confirmed them. WAIT
 * counts the writes of its own connection, so it must reach the primary that
 * took them on the same connection: a pipeline whose only keyed command
 * (EXISTS `slotKey`) routes it there in a cluster (one server: the one connection).
 * Rejects with what Redis or ioredis answered when it fails.
 */
export async function waitForReplicas(c: RedisClient, slotKey: string, replicas: number, timeoutMs: number): Promise<number> {
  const res = await c.pipeline().exists(slotKey).call('WAIT', replicas, timeoutMs).exec();
  const last = res?.[1];
  if (!last) throw new StoreError('MB_ERR_STORE_UNAVAILABLE', 'WAIT got no reply');
  if (last[0]) throw last[0];
  return Number(last[1]);
}

/** How long a QUIT may take before the connection is dropped instead, ms. */
const QUIT_WAIT_MS = 2000;

/**
 * ioredis's `disconnectTimeout`, ms (its default 2,000): after disconnect()
 * it waits this long for the socket to close before destroying it, on a timer
 * that is not unref'd, even when the socket closed long before (a connection
 * between two reconnect attempts keeps its dead socket). That held a process
 * whose node had closed during a Redis outage 2 s longer, once per
 * connection, BullMQ's included (they are duplicates and inherit it). A
 * disconnect gives nothing up by destroying sooner.
 */
const DISCONNECT_WAIT_MS = 200;

/**
 * Drops a connection at once: disconnect(), and for one between two
 * reconnect attempts (no socket) ends it as ioredis does a connection that
 * never connected: status 'end', the 'end' event, and every command waiting
 * in it rejected ("Connection is closed"). ioredis's own disconnect() there
 * clears the reconnect timer and nothing else: the connection never ended,
 * and what waited for it waited for ever (BullMQ's worker close waits for its
 * blocking connection's 'end'; its fetch loop for a BZPOPMIN queued in it,
 * then a 6 s watchdog). A Redis Cluster client between two attempts (no node
 * left) likewise: its disconnect() there left it 'disconnecting' for ever,
 * with its offline queue (a worker's BZPOPMIN) waiting; it is ended the same
 * way (the 'wait' state runs its close handler). Only for a connection whose users handle that
 * rejection: BullMQ's wrapper of a connection still initializing re-emits it
 * as an 'error', which `quietConnections` (bullmq-guard.ts) keeps from
 * crashing a process once nothing listens.
 */
export function dropConnection(c: RedisClient): void {
  // 'wait' is the state in which disconnect() runs the close handler itself (ioredis Redis#disconnect, Cluster#disconnect).
  if (betweenAttempts(c)) (c as unknown as { status: string }).status = 'wait';
  c.disconnect();
}

/** True for a connection with no socket (one server) or no node (a cluster) now, waiting to try again or stopped there. */
function betweenAttempts(c: RedisClient): boolean {
  if (!isCluster(c)) return c.status === 'reconnecting' || c.status === 'close';
  return c.status === 'reconnecting' || c.status === 'close' || (c.status === 'disconnecting' && c.nodes().length === 0);
}

/**
 * Closes a connection: QUIT when it is connected (Redis runs what was sent
 * before it), else drops it (dropConnection). A QUIT on a connection that is
 * not connected waits in its offline queue (the worker and pub/sub
 * connections keep one) for a Redis that may never come back: node.close()
 * hung for ever when Redis was down. Dropped, not only disconnected: a
 * connection between two reconnect attempts keeps the commands it had sent
 * when Redis died, for a resend that never comes (the workers' connection
 * retries for ever), and a BullMQ job move waiting on one held its worker's
 * close, whose lock-renewal and stalled-check timers then kept the process
 * alive after node.close() (core/test/durable-close-down.test.ts, a stop
 * begun as Redis dies). Bounded too when connected (Redis may die
 * meanwhile). Never rejects.
 */
export async function closeConnection(c: RedisClient): Promise<void> {
  if (c.status !== 'ready') {
    dropConnection(c);
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const quit = c.quit().then(
    () => true,
    () => false,
  );
  const quitted = await Promise.race([quit, new Promise<boolean>((r) => (timer = setTimeout(() => r(false), QUIT_WAIT_MS)))]);
  clearTimeout(timer);
  if (!quitted) c.disconnect();
}

/** Resolves true when the connection is ready, false when `stopped` resolves first. No time bound: Redis may come up any time. */
export function untilReady(r: RedisClient, stopped: Promise<void>): Promise<boolean> {
  if (r.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const onReady = (): void => resolve(true);
    r.once('ready', onReady);
    void stopped.then(() => {
      r.off('ready', onReady);
      resolve(false);
    });
  });
}

/**
 * Resolves false at the connection's first failure (a refused connection:
 * at once) or after `ms` (a host that does not answer): how long start-up
 * gives Redis, racing bringUp. cancel() drops the timer and listeners.
 */
export function firstFailure(r: RedisClient, ms: number): { promise: Promise<false>; cancel: () => void } {
  let cancel = (): void => {};
  const promise = new Promise<false>((resolve) => {
    const t = setTimeout(() => done(), ms);
    const done = (): void => {
      cancel();
      resolve(false);
    };
    cancel = (): void => {
      clearTimeout(t);
      r.off('error', done);
      r.off('end', done);
    };
    r.once('error', done);
    r.once('end', done);
  });
  return { promise, cancel };
}

/** How often an idle Redis Cluster client is asked for a PING, ms. */
const CLUSTER_PROBE_MS = 1000;

/**
 * Keeps `c`'s status true while nothing else is sent on it, for a Cluster
 * client (nothing to do for one server, whose socket's close is seen at
 * once): ioredis learns that a cluster's nodes are gone only when it sends
 * to them. An idle node whose whole Redis Cluster died kept the client
 * 'ready' for as long as nothing was published: `redisUp` 1, `/v1/node`
 * store 'up' and `meshbus_store_redis_up` 1 over a dead store (a PING a
 * second ends that in about a second). Returns the stop.
 */
export function probeCluster(c: RedisClient): () => void {
  if (!isCluster(c)) return () => {};
  const t = setInterval(() => {
    if (c.status === 'ready') c.ping().catch(() => {});
  }, CLUSTER_PROBE_MS);
  t.unref();
  return () => clearInterval(t);
}

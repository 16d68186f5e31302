import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { ownRedisServers, until, startRedisCluster, topologyToolsInstalled, type Topology } from '@meshbus/testkit';

/**
 * A node closed while its Redis is down lets its process exit at once
 * (newcomer leftovers, session 8). A real process (a child node running a
 * durable node with a durable queue consumer that got a job) whose Redis
 * (our own redis-server) is SIGKILLed; then node.close(), and the time until
 * the process exits by itself (no process.exit). Before: close() resolved at
 * once, but the process lived on: 5 s when the stop began as Redis died
 * (WorkQueues.stop waited STOP_WAIT_MS for worker closes that could no longer
 * finish), and for ever once the node had seen Redis down (BullMQ's graceful
 * close waited for its blocking connection's 'end', which ioredis never emits
 * for a connection between two reconnect attempts, and the worker's 7.5 s
 * lock-renewal timer rearmed meanwhile; plus a 2 s ioredis disconnect timer
 * per connection and a 6 s BZPOPMIN watchdog).
 *
 * The third case (session 12) is the one the second met ~1 run in 20 under
 * load: a job move (the consumer left, so its job fails) sent on the workers'
 * connection while Redis hangs, then Redis dies. ioredis keeps a sent command
 * across reconnects for a resend; closed with disconnect() between two
 * attempts, the connection never ended it, the worker's close waited for the
 * move for ever, and its lock-renewal and stalled-check timers kept the
 * process alive. Now closeConnection drops it (the command is rejected).
 *
 * The fourth: an idle node whose whole Redis Cluster died never saw it
 * (ioredis's cluster client learns of dead nodes only when it sends to
 * them): `redisUp` stayed 1 and the child, which closes once it sees Redis
 * down, never closed. Now an idle cluster client is probed (probeCluster).
 */

const CORE = fileURLToPath(new URL('..', import.meta.url));
/** What the process may take to exit after close() resolved, ms (the target is under 1 s after SIGTERM). */
const EXIT_WITHIN_MS = 1000;
/**
 * The same with a Redis Cluster: BullMQ's own cluster connections (a
 * worker's blocking connection, duplicated from ours) close in the
 * background, and ioredis's cluster subscriber of each picks a new node at
 * each refusal until then (~2 s here). Left: RELIABILITY.md, twelfth session.
 */
const CLUSTER_EXIT_WITHIN_MS = 3000;
/**
 * CPU of an idle node in 2 s of its Redis outage, ms. ioredis's cluster
 * subscriber, with every node gone, picked a new one at each refused
 * connection: 1,586-2,104 ms of CPU in 2 s (a core spinning for as long as
 * the outage lasts); ~270 with the probe (probeCluster). One server: ~0.
 */
const OUTAGE_CPU_MS = 1000;

const redis = ownRedisServers();

type Case = 'seen' | 'dying' | 'move in flight' | 'cluster';
/** Cases where the child closes its node only once it saw Redis down. */
const seenOf = (kind: Case): boolean => kind === 'seen' || kind === 'cluster';

/**
 * The child: a durable node with a queue consumer holding a job; on SIGUSR2
 * it closes the node ('seen': once it saw Redis down). 'move in flight': on
 * SIGUSR2 it closes the consumer (its job fails: a move sent to a Redis the
 * test has paused), says 'moving', and on SIGUSR1 (Redis killed) waits until
 * it saw Redis down, then closes the node.
 */
function child(url: string, kind: Case): string {
  const seen = seenOf(kind);
  return `
    // Where each live timer was made, for the failure message (async_hooks: a Timeout's init runs where it is armed).
    const { createHook } = await import('node:async_hooks');
    const timers = new Map();
    createHook({ init(id, type) { if (type === 'Timeout') timers.set(id, new Error().stack.split('\\n').slice(2, 12).join('\\n')); }, destroy(id) { timers.delete(id); } }).enable();
    const { startNode, silentLogger } = await import('@meshbus/core');
    const { connect } = await import('@meshbus/sdk');
    const n = await startNode({ port: 0, logger: silentLogger, durable: { redis: '${url}', prefix: 'closedown:', topics: [{ pattern: 'h.>', history: { size: 10 } }] } });
    const c = await connect('127.0.0.1:' + n.port, { reconnect: false });
    let got = 0;
    let release = () => {};
    // 'move in flight': the job is ACKed (the callback's promise resolved) only on SIGUSR2.
    const held = ${kind === 'move in flight'};
    c.subscribe('q.>', { queue: 'g', durable: true, callback: () => { got++; if (held) return new Promise((r) => (release = r)); } });
    await c.flush();
    while ((n.durability.matcher.forTopic('q.a')?.queues.length ?? 0) === 0) await new Promise((r) => setTimeout(r, 20));
    await c.publish('q.a', 'x', { ack: true });
    while (got === 0) await new Promise((r) => setTimeout(r, 20));
    const closeNode = async () => {
      if (${seen}) {
        while (n.stats.store.redisUp !== 0) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 300));
        // CPU the node spends in 2 s of the outage, idle otherwise (the test's bound: OUTAGE_CPU_MS).
        const u0 = process.cpuUsage();
        await new Promise((r) => setTimeout(r, 2000));
        const u = process.cpuUsage(u0);
        process.stderr.write('outage cpu ' + Math.round((u.user + u.system) / 1000) + ' ms\\n');
      }
      await c.close().catch(() => {});
      await n.close();
      process.stderr.write('closed\\n');
      // Still alive 3 s later (the test fails at 10 s): say what holds the event loop, for the failure message.
      setTimeout(() => process.stderr.write('alive after close: ' + process.getActiveResourcesInfo().length + ' resources; live timers armed at (count, stack):\\nconnections (status, offline, sent): ' + JSON.stringify(n.durability.conns.map((r) => [r.status, r.offlineQueue?.length, r.commandQueue?.length])) + '\\n' + Object.entries([...timers.values()].reduce((m, v) => ((m[v] = (m[v] ?? 0) + 1), m), {})).map(([k, v]) => v + ' x\\n' + k).join('\\n--\\n') + '\\n'), 3000).unref();
    };
    if (${kind === 'move in flight'}) {
      process.once('SIGUSR2', async () => {
        release();
        await new Promise((r) => setTimeout(r, 300));
        process.stderr.write('moving: commands sent on the connections ' + JSON.stringify(n.durability.conns.map((r) => r.commandQueue.length)) + '\\n');
        process.once('SIGUSR1', () => void closeNode());
      });
    } else process.once('SIGUSR2', () => void closeNode());
    process.stderr.write('ready\\n');
  `;
}

const TITLES: Record<Case, string> = {
  seen: 'once it saw its Redis down',
  dying: 'as its Redis dies',
  'move in flight': 'with a job move in flight when its Redis died',
  cluster: 'once it saw its whole Redis Cluster down, idle',
};

/** The Redis of a case: one server of ours, or a 3-primary Redis Cluster (its kill() stops every server). */
async function redisOf(kind: Case, skip: (note?: string) => void): Promise<{ url: string; kill(): Promise<void>; pause(): void }> {
  if (kind !== 'cluster') return redis.start({ skip });
  if (!topologyToolsInstalled()) {
    const reason = 'redis-server and redis-cli are not installed (apt-get install redis-server)';
    if (process.env.MESHBUS_REQUIRE_REDIS === '1') throw new Error(`MESHBUS_REQUIRE_REDIS=1 but ${reason}`);
    skip(reason);
  }
  const t = await startRedisCluster();
  clusters.push(t);
  return { url: t.url, kill: () => t.stop(), pause: () => {} };
}
const clusters: Topology[] = [];
afterEach(async () => {
  for (const t of clusters.splice(0)) await t.stop();
});

for (const kind of ['seen', 'dying', 'move in flight', 'cluster'] as const) {
  it(`a node closed ${TITLES[kind]}: the process exits within ${kind === 'cluster' ? CLUSTER_EXIT_WITHIN_MS : EXIT_WITHIN_MS} ms`, async ({ skip }) => {
    const server = await redisOf(kind, skip);
    const p = spawn(process.execPath, ['--input-type=module', '-e', child(server.url, kind)], { cwd: CORE, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let closedAt = 0;
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (closedAt === 0 && stderr.includes('closed')) closedAt = Date.now();
    });
    const exited = new Promise<number>((r) => p.once('exit', () => r(Date.now())));
    try {
      await until(() => stderr.includes('ready') || p.exitCode !== null, 'the child ready', 20_000);
      expect(stderr).toContain('ready');
      if (kind === 'move in flight') {
        server.pause();
        p.kill('SIGUSR2');
        await until(() => stderr.includes('moving') || p.exitCode !== null, 'the job ACKed', 10_000);
        p.kill('SIGUSR1');
        await new Promise((r) => setTimeout(r, 300));
        await server.kill();
      } else {
        await server.kill();
        p.kill('SIGUSR2');
      }
      await until(() => closedAt > 0 || p.exitCode !== null, 'node.close() returned (the node saw its Redis down first)', 10_000);
      const bound = new Promise<number>((r) => setTimeout(() => r(0), 10_000));
      const at = await Promise.race([exited, bound]);
      expect(at, `the process did not exit within 10 s of close(): ${stderr}`).toBeGreaterThan(0);
      console.log(`[close-down] ${kind}: exit ${at - closedAt} ms after close()`);
      expect(at - closedAt, stderr).toBeLessThan(kind === 'cluster' ? CLUSTER_EXIT_WITHIN_MS : EXIT_WITHIN_MS);
      if (seenOf(kind)) {
        const cpu = Number(/outage cpu (\d+) ms/.exec(stderr)?.[1]);
        console.log(`[close-down] ${kind}: ${cpu} ms of CPU in 2 s of the outage`);
        expect(cpu).toBeLessThan(OUTAGE_CPU_MS);
      }
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  }, 60_000);
}

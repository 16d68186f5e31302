import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { ownRedisServers, until } from '@meshbus/testkit';

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
 */

const CORE = fileURLToPath(new URL('..', import.meta.url));
/** What the process may take to exit after close() resolved, ms (the target is under 1 s after SIGTERM). */
const EXIT_WITHIN_MS = 1000;

const redis = ownRedisServers();

/** The child: a durable node with a queue consumer holding a job; on SIGUSR2 it closes the node (`seen`: once it saw Redis down). */
function child(url: string, seen: boolean): string {
  return `
    const { startNode, silentLogger } = await import('@meshbus/core');
    const { connect } = await import('@meshbus/sdk');
    const n = await startNode({ port: 0, logger: silentLogger, durable: { redis: '${url}', prefix: 'closedown:', topics: [{ pattern: 'h.>', history: { size: 10 } }] } });
    const c = await connect('127.0.0.1:' + n.port, { reconnect: false });
    let got = 0;
    c.subscribe('q.>', { queue: 'g', durable: true, callback: () => void got++ });
    await c.flush();
    while ((n.durability.matcher.forTopic('q.a')?.queues.length ?? 0) === 0) await new Promise((r) => setTimeout(r, 20));
    await c.publish('q.a', 'x', { ack: true });
    while (got === 0) await new Promise((r) => setTimeout(r, 20));
    process.once('SIGUSR2', async () => {
      if (${seen}) {
        while (n.stats.store.redisUp !== 0) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, 300));
      }
      await c.close().catch(() => {});
      await n.close();
      process.stderr.write('closed\\n');
      // Still alive 3 s later (the test fails at 10 s): say what holds the event loop, for the failure message.
      setTimeout(() => process.stderr.write('alive after close: ' + JSON.stringify(process.getActiveResourcesInfo()) + '\\n'), 3000).unref();
    });
    process.stderr.write('ready\\n');
  `;
}

for (const seen of [true, false]) {
  it(`a node closed ${seen ? 'once it saw its Redis down' : 'as its Redis dies'}: the process exits within ${EXIT_WITHIN_MS} ms`, async ({ skip }) => {
    const server = await redis.start({ skip });
    const p = spawn(process.execPath, ['--input-type=module', '-e', child(server.url, seen)], { cwd: CORE, stdio: ['ignore', 'ignore', 'pipe'] });
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
      await server.kill();
      p.kill('SIGUSR2');
      await until(() => closedAt > 0 || p.exitCode !== null, 'node.close() returned', 10_000);
      const bound = new Promise<number>((r) => setTimeout(() => r(0), 10_000));
      const at = await Promise.race([exited, bound]);
      expect(at, `the process did not exit within 10 s of close(): ${stderr}`).toBeGreaterThan(0);
      console.log(`[close-down] seen=${seen}: exit ${at - closedAt} ms after close()`);
      expect(at - closedAt).toBeLessThan(EXIT_WITHIN_MS);
    } finally {
      if (p.exitCode === null) p.kill('SIGKILL');
    }
  }, 60_000);
}

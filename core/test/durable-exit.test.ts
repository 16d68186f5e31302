import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { testRedis, startRedisCluster, startSentinelSetup, topologyToolsInstalled, type Topology } from '@meshbus/testkit';

// A node with Redis must let its process exit by itself once close() resolved:
// nothing of durability (BullMQ workers' stalled-job checkers, ioredis
// connections and their disconnect timers, the queue refresh interval) may stay
// scheduled. Before the fix a BullMQ worker's stalled checker re-armed a 30 s
// timer after close(), and a connection closed during its ready check armed a
// 2 s one; the child below then outlived the wait and was killed.

const CORE = fileURLToPath(new URL('..', import.meta.url));
/** Bound for the child's own exit: well under BullMQ's 30 s stalled-check interval. */
const EXIT_WAIT_MS = 15_000;

/** Runs `script` (an ES module body) in a fresh node in core/; resolves with its exit code (null: killed at the bound) and stderr. */
function runChild(script: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: CORE, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), EXIT_WAIT_MS);
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stderr });
    });
  });
}

/** The child: start and close a durable node three times on `url`, then report what is still active. */
function threeRounds(url: string, prefix: string): string {
  const durable = JSON.stringify({ redis: url, prefix, topics: [{ pattern: 'd.>', history: { size: 10 }, latest: true }] });
  // Three rounds: each close() races BullMQ's first stalled check and the
  // connections' ready checks differently, so an old leak shows up reliably.
  // No process.exit: the child ends only when nothing is left scheduled.
  return `
    const { startNode, silentLogger } = await import('@meshbus/core');
    for (let i = 0; i < 3; i++) {
      const n = await startNode({ port: 0, logger: silentLogger, durable: ${durable} });
      if (!n.durability) throw new Error('no durability');
      n.publishLocal('d.x', new Uint8Array(1));
      await n.close();
    }
    process.stderr.write('closed; still active: ' + process.getActiveResourcesInfo().join(',') + '\\n');
  `;
}

describe('a node with redis lets the process exit after close', () => {
  it('start and close a durable node three times, then the process exits by itself with code 0', async (ctx) => {
    const r = await testRedis(ctx);
    try {
      const { code, stderr } = await runChild(threeRounds(r.url, r.prefix));
      expect(stderr).toMatch(/closed; still active/);
      expect(code, `the child did not exit by itself (killed after ${EXIT_WAIT_MS} ms): ${stderr}`).toBe(0);
    } finally {
      await r.cleanup();
    }
  }, EXIT_WAIT_MS + 10_000);
});

describe.each<[string, () => Promise<Topology>]>([
  ['a Redis Cluster', startRedisCluster],
  ['a Sentinel setup', startSentinelSetup],
])('a node on %s lets the process exit after close', (_name, start) => {
  it('start and close a durable node three times, then the process exits by itself with code 0', async (ctx) => {
    if (!topologyToolsInstalled()) {
      if (process.env.MESHBUS_REQUIRE_REDIS === '1') throw new Error('MESHBUS_REQUIRE_REDIS=1 but redis-server/redis-cli are not installed');
      ctx.skip('redis-server and redis-cli are not installed');
    }
    const t = await start();
    try {
      const { code, stderr } = await runChild(threeRounds(t.url, 'exit:'));
      expect(stderr).toMatch(/closed; still active/);
      expect(code, `the child did not exit by itself (killed after ${EXIT_WAIT_MS} ms): ${stderr}`).toBe(0);
    } finally {
      await t.stop();
    }
  }, EXIT_WAIT_MS + 40_000);
});

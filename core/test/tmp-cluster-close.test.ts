import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { until } from '@meshbus/testkit';
import { startRedisCluster } from './redis-topology.js';

const CORE = fileURLToPath(new URL('..', import.meta.url));
for (const hold of [false, true]) it(`cluster close-down hold=${hold}`, async () => {
  const t = await startRedisCluster();
  const code = `
    const { createHook } = await import('node:async_hooks');
    const timers = new Map();
    createHook({ init(id, type) { if (type === 'Timeout') timers.set(id, new Error().stack.split('\\n').slice(2, 9).join('\\n')); }, destroy(id) { timers.delete(id); } }).enable();
    const { startNode, silentLogger } = await import('@meshbus/core');
    const { connect } = await import('@meshbus/sdk');
    const n = await startNode({ port: 0, logger: silentLogger, durable: { redis: '${t.url}', prefix: 'cd:', topics: [{ pattern: 'h.>', history: { size: 10 } }] } });
    while (n.stats.store.redisUp !== 1) await new Promise((r) => setTimeout(r, 20));
    const c = await connect('127.0.0.1:' + n.port, { reconnect: false });
    let got = 0; let release = () => {};
    c.subscribe('q.>', { queue: 'g', durable: true, callback: () => { got++; if (${hold}) return new Promise((r) => (release = r)); } });
    await c.flush();
    while ((n.durability.matcher.forTopic('q.a')?.queues.length ?? 0) === 0) await new Promise((r) => setTimeout(r, 20));
    await c.publish('q.a', 'x', { ack: true });
    while (got === 0) await new Promise((r) => setTimeout(r, 20));
    process.stderr.write('ready\\n');
    process.once('SIGUSR2', async () => {
      release();
      const t0 = Date.now(); while (n.stats.store.redisUp !== 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
      process.stderr.write('redisUp ' + n.stats.store.redisUp + ' ' + JSON.stringify(n.durability.conns.map((r) => r.status)) + '\\n');
      await new Promise((r) => setTimeout(r, 300));
      await c.close().catch(() => {});
      process.stderr.write('client closed\\n');
      setTimeout(() => process.stderr.write('close pending: ' + JSON.stringify(n.durability.conns.map((r) => [r.status, r.offlineQueue?.length])) + '\\n'), 4000).unref();
      await n.close();
      process.stderr.write('closed\\n');
      setTimeout(() => process.stderr.write('alive: ' + JSON.stringify(process.getActiveResourcesInfo()) + '\\n' + [...timers.values()].join('\\n--\\n') + '\\n'), 3000).unref();
    });
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: CORE, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number>((r) => p.once('exit', () => r(Date.now())));
  try {
    await until(() => stderr.includes('ready') || p.exitCode !== null, 'ready', 30_000);
    await t.stop();
    p.kill('SIGUSR2');
    await until(() => stderr.includes('closed') || p.exitCode !== null, 'closed: ' + stderr, 20_000).catch((e) => { p.kill('SIGUSR1'); throw e; });
    const at = await Promise.race([exited, new Promise<number>((r) => setTimeout(() => r(0), 8000))]);
    console.log(stderr); expect(at, stderr).toBeGreaterThan(0);
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL');
  }
}, 90_000);

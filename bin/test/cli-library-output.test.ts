import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { ownRedisServers, spawnCli, trackedProcesses, untilProcess } from '@meshbus/testkit';

/**
 * What libraries and Node write to stderr in a node process was plain text
 * among its JSON log lines: ioredis's `console.warn("[WARN] Redis server does
 * not require a password, but a password was supplied.")` (a `--redis` URL
 * with a password, a server with none) and Node's "(node:12) Warning: …" lines,
 * which a log pipeline reading each line as JSON drops or flags (newcomer
 * review). Now each is a JSON line of the node's logger. A real process; the
 * process warning comes from a `--require`d file on SIGUSR2, as a library's
 * `process.emitWarning` would.
 */
const { track, stop } = trackedProcesses();
afterEach(() => stop({ group: false }));
const redis = ownRedisServers();

it("start: ioredis's console warnings and Node's process warnings are JSON log lines, like every other line", async ({ skip }) => {
  const server = await redis.start({ skip });
  const warner = join(tmpdir(), `meshbus-warner-${process.pid}.cjs`);
  await writeFile(warner, "process.on('SIGUSR2', () => process.emitWarning('a library warning', { code: 'MB_TEST_WARNING' }));\n");
  const port = await freePort();
  const p = track(
    spawnCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info', '--redis', `redis://:not-needed@127.0.0.1:${server.port}`, '--durable', 'o.>|history=5'], { nodeArgs: ['--require', warner] }),
  );
  const lines = (): string[] => p.err().split('\n').filter((l) => l.trim() !== '');
  await untilProcess(p, () => p.err().includes('does not require a password'), "ioredis's warning", 15_000);
  await untilProcess(p, () => p.err().includes('node listening'), 'the node to serve', 15_000);
  p.child.kill('SIGUSR2');
  await untilProcess(p, () => p.err().includes('a library warning'), 'the process warning');
  for (const l of lines()) expect(() => JSON.parse(l), l).not.toThrow();
  const records = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(records.find((r) => String(r.msg).includes('does not require a password'))).toMatchObject({ level: 'warn', source: 'console' });
  expect(records.find((r) => r.msg === 'a library warning')).toMatchObject({ level: 'warn', source: 'node', name: 'Warning', code: 'MB_TEST_WARNING' });
  p.child.kill('SIGTERM');
  expect(await p.exited, p.err()).toBe(0);
});

it('start with NODE_NO_WARNINGS=1: Node\'s warnings stay silent (they were logged as JSON)', async () => {
  const warner = join(tmpdir(), `meshbus-warner-${process.pid}.cjs`);
  await writeFile(warner, "process.on('SIGUSR2', () => process.emitWarning('a library warning', { code: 'MB_TEST_WARNING' }));\n");
  const port = await freePort();
  const p = track(spawnCli(['start', '--port', String(port), '--http-port', 'off', '--ws-port', 'off', '--log-level', 'info'], { nodeArgs: ['--require', warner], env: { NODE_NO_WARNINGS: '1' } }));
  await untilProcess(p, () => p.err().includes('node listening'), 'the node to serve', 15_000);
  p.child.kill('SIGUSR2');
  // Then a line that comes after the warning would have: SIGHUP is logged and ignored.
  p.child.kill('SIGHUP');
  await untilProcess(p, () => p.err().includes('SIGHUP ignored'), 'the SIGHUP line');
  expect(p.err()).not.toContain('a library warning');
  p.child.kill('SIGTERM');
  expect(await p.exited, p.err()).toBe(0);
});

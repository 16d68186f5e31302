import { afterEach, expect, it } from 'vitest';
import { freePortRange, spawnCliOnFreePorts, until, type CliProcess } from '@meshbus/testkit';

/**
 * Two bounds a node enforces had no `meshbus start` setting (twenty-second
 * session's left-overs): a hub's leaf links (`maxLeafLinks`) and the HTTP
 * API's waiting calls (`maxWaiting`): an operator could only keep the
 * defaults. Each flag is checked on real processes: it reaches the bound.
 */
const procs: CliProcess[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) {
    p.child.kill('SIGTERM');
    await p.exited;
  }
});

async function start(name: string, extra: (base: number) => string[]): Promise<{ p: CliProcess; base: number }> {
  const { p, ports } = await spawnCliOnFreePorts({
    pick: () => freePortRange(3),
    args: (base) => ['start', '--name', name, '--port', String(base), '--http-port', String(base + 2), '--ws-port', 'off', '--log-level', 'info', ...extra(base)],
    ready: (n) => n.err().includes('node listening') || n.out().includes('node listening') || n.child.exitCode !== null,
    what: `${name} to listen`,
    track: (n) => (procs.push(n), n),
  });
  return { p, base: ports };
}

it('--http-max-waiting sets the HTTP API bound on waiting calls (its metric says it)', async () => {
  const { base } = await start('waits', () => ['--http-max-waiting', '3']);
  let metrics = '';
  await until(async () => {
    metrics = await (await fetch(`http://127.0.0.1:${base + 2}/metrics`)).text();
    return metrics.includes('meshbus_http_waiting_calls_limit');
  }, 'metrics served');
  expect(metrics).toMatch(/^meshbus_http_waiting_calls_limit 3$/m);
}, 30_000);

it('--max-leaf-links 1: a hub takes one leaf and refuses the second', async () => {
  const hub = await start('hub', (b) => ['--cluster-port', String(b + 1), '--max-leaf-links', '1']);
  const seed = `127.0.0.1:${hub.base + 1}`;
  await start('leaf-1', (b) => ['--cluster-port', String(b + 1), '--mesh', 'leaf', '--seeds', seed]);
  await start('leaf-2', (b) => ['--cluster-port', String(b + 1), '--mesh', 'leaf', '--seeds', seed]);
  await until(() => hub.p.err().includes('leaf link refused: maxLeafLinks reached'), 'the second leaf refused', 20_000);
  const refused = hub.p.err().split('\n').find((l) => l.includes('leaf link refused'))!;
  expect(JSON.parse(refused)).toMatchObject({ maxLeafLinks: 1, code: 'MB_ERR_TOO_MANY_CONNECTIONS' });
}, 40_000);

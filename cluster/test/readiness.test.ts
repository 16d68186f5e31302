import { afterEach, expect, it } from 'vitest';
import { freePort, startNode, silentLogger, type Logger } from '@meshbus/core';
import { startHttp } from '@meshbus/core/http';
import { ClusterNode } from '../src/index.js';
import { until } from '@meshbus/testkit';

/**
 * Issue #16: a node whose seeds are only itself, or names that do not resolve
 * yet (the first pod of a StatefulSet behind a headless service), becomes
 * ready (ClusterNode.ready(), behind /readyz) after a bounded wait instead of
 * never; a name that does not resolve is logged once, not once per redial.
 */
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

async function clustered(seeds: (port: number) => string[], readyWait: number, logger: Logger = silentLogger): Promise<ClusterNode> {
  const node = await startNode({ port: 0, logger, pingInterval: 1000 });
  const port = await freePort();
  const c = await new ClusterNode(node, { port, seeds: seeds(port), readyWait, redialMin: 20, redialMax: 50 }).start();
  stops.push(async () => {
    await c.stop();
    await node.close();
  });
  return c;
}

it('a node whose only seed is itself is ready once it found that out, without waiting readyWait', async () => {
  const c = await clustered((port) => [`127.0.0.1:${port}`], 600_000);
  await until(() => c.ready(), 'the self-seeded node to be ready');
  expect(c.joined()).toBe(true); // nothing to join
  expect(c.peers().filter((p) => p.state === 'up')).toEqual([]);
});

it('a node whose seeds never answer or do not resolve is ready after readyWait, and says once that the name does not resolve', async () => {
  const warned: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (o, msg) => warned.push(`${msg ?? ''} ${JSON.stringify(o)}`) };
  const dead = await freePort();
  const c = await clustered(() => ['meshbus-seed-0.does-not-exist.invalid:4481', `127.0.0.1:${dead}`], 400, logger);
  expect(c.ready()).toBe(false);
  await until(() => c.ready(), 'readiness after readyWait');
  // Ready anyway, but nothing joined: /readyz says `joined: false` (it said true).
  expect(c.joined()).toBe(false);
  // The resolver may answer at once (ENOTFOUND) or only after its timeout (EAI_AGAIN, no DNS server).
  const dns = (): string[] => warned.filter((l) => l.includes('cannot resolve peer address'));
  await until(() => dns().length > 0, 'the DNS failure to be logged', 30_000);
  // Redials go on every 20-50 ms (plus the resolver's time); the failure is told once.
  await new Promise((r) => setTimeout(r, 500));
  expect(dns()).toHaveLength(1);
  expect(dns()[0]).toContain('does-not-exist.invalid');
  expect(dns()[0]).toMatch(/"code":"E[A-Z_]+"/);
}, 40_000);

it('a node with a live seed is not ready before its link is up (readyWait long)', async () => {
  const a = await clustered(() => [], 0);
  expect(a.ready()).toBe(true);
  const b = await clustered(() => [`127.0.0.1:${a.port}`], 600_000);
  await until(() => b.ready(), 'the link to come up');
  expect(b.joined()).toBe(true);
  expect(b.peers().some((p) => p.state === 'up')).toBe(true);
});

it('/readyz after readyWait ran out with no seed answering: 200, ready but not joined', async () => {
  const dead = await freePort();
  const c = await clustered(() => [`127.0.0.1:${dead}`], 300);
  const http = await startHttp(c.node, { port: 0, host: '127.0.0.1', cluster: c });
  stops.push(() => http.close());
  const before = await fetch(`${http.url}/readyz`);
  expect(before.status).toBe(503);
  expect(await before.json()).toMatchObject({ ready: false, listening: true, joined: false, error: { code: 'MB_ERR_NOT_READY' } });
  await until(() => c.ready(), 'readiness after readyWait');
  const after = await fetch(`${http.url}/readyz`);
  expect(after.status).toBe(200);
  expect(await after.json()).toEqual({ ready: true, listening: true, joined: false, draining: false });
});

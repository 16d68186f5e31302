/**
 * An HTTP API that fails to load (a broken install: fastify or prom-client
 * missing or unreadable) is tried again at the next request, and each failure
 * was an error line: anyone who reached the port (no token needed, nothing
 * is loaded to check one) had the node write a line per request. Said once a
 * minute now (ThrottledLog), every request still answered 500.
 */
import { expect, it, vi } from 'vitest';
import { logCapture, nodeKit } from '@meshbus/testkit';
import { startHttpOnDemand } from '../src/http/index.js';

// The load itself fails, as a module that cannot be imported would.
vi.mock('../src/http/http-server.js', async (original) => ({
  ...(await original<typeof import('../src/http/http-server.js')>()),
  mountHttp: () => Promise.reject(new Error('Cannot find package fastify')),
}));

const kit = nodeKit();

it('an API that fails to load at every request: one "http api failed to load" line, every request answered 500', async () => {
  const { logger, records } = logCapture();
  const node = await kit.node({ logger });
  const h = await startHttpOnDemand(node, { port: 0, host: '127.0.0.1' });
  kit.defer(() => h.close());
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push((await fetch(`${h.url}/healthz`)).status);
  expect(new Set(statuses)).toEqual(new Set([500]));
  const failed = records().filter((r) => r.msg === 'http api failed to load');
  expect(failed).toHaveLength(1);
  expect(failed[0]).toMatchObject({ level: 'error', err: 'Cannot find package fastify' });
});

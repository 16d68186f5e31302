import { afterEach, expect, it } from 'vitest';
import { silentLogger } from '@meshbus/core';
import { loadStartConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/start.js';

/** `meshbus start` and the HTTP API's open-admin rule (core/README, HTTP access rules). */

const running: RunningServer[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.stop();
});

const base = { port: '0', 'http-port': '0', 'ws-port': 'off', 'log-level': 'silent' };

it('refuses to start an open HTTP API on a node whose clients need a token, unless told so or the API is off', async () => {
  await expect(startServer(loadStartConfig({ ...base, token: 'client-secret' }, {}), silentLogger)).rejects.toMatchObject({ code: 'MB_ERR_CONFIG', message: expect.stringMatching(/--admin-token/) });
  await expect(startServer(loadStartConfig({ ...base, 'http-host': '0.0.0.0' }, {}), silentLogger)).rejects.toMatchObject({ code: 'MB_ERR_CONFIG' });
  const withAdmin = await startServer(loadStartConfig({ ...base, token: 'client-secret', 'admin-token': 'admin' }, {}), silentLogger);
  running.push(withAdmin);
  expect((await fetch(`${withAdmin.http!.url}/v1/node`)).status).toBe(401);
  const open = await startServer(loadStartConfig({ ...base, token: 'client-secret', 'http-insecure-open': 'on' }, {}), silentLogger);
  running.push(open);
  expect((await fetch(`${open.http!.url}/v1/node`)).status).toBe(200);
  const off = await startServer(loadStartConfig({ ...base, token: 'client-secret', 'http-port': 'off' }, {}), silentLogger);
  running.push(off);
  expect(off.http).toBeUndefined();
  expect(() => loadStartConfig({ ...base, 'http-insecure-open': 'yes' }, {})).toThrow(/--http-insecure-open/);
});

import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { runCli, spawnCli, trackedProcesses, until } from '@meshbus/testkit';

/**
 * A client given the wrong port of a node, the newcomer's commonest mistake
 * (a node has four: clients, peers, HTTP, WebSocket). Before: the cluster
 * port said "peer info is not a map"; an HTTP or gateway port "frame does not
 * start with the meshbus magic"; ws:// to the client or cluster port a bare
 * "WebSocket closed (code 1006)"; curl on the client port printed an ERROR
 * frame's bytes. Now each says which port it is and which to use (SPEC 2).
 * One real `meshbus start` process, the CLI (the Node SDK) and fetch.
 */

const { track, stop } = trackedProcesses();
afterAll(async () => {
  await stop();
});
const ports = { client: 0, cluster: 0, http: 0, ws: 0 };

beforeAll(async () => {
  for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
  track(
    spawnCli([
      'start', '--port', String(ports.client), '--cluster-port', String(ports.cluster), '--http-port', String(ports.http), '--ws-port', String(ports.ws),
      '--cluster-secret', 'wrong-port-secret', '--log-level', 'warn',
    ]),
  );
  await until(async () => (await fetch(`http://127.0.0.1:${ports.http}/readyz`).catch(() => undefined))?.status === 200, 'the node');
});

it('HTTP on the client and cluster ports is answered in HTTP: 400, saying which port it is and where HTTP is', async () => {
  const client = await fetch(`http://127.0.0.1:${ports.client}/`);
  expect(client.status).toBe(400);
  const text = await client.text();
  expect(text).toContain('This is a meshbus client port');
  expect(text).toContain('--http-port');
  const cluster = await fetch(`http://127.0.0.1:${ports.cluster}/`);
  expect(cluster.status).toBe(400);
  expect(await cluster.text()).toContain('This is a meshbus cluster (peer) port');
});

it('a TCP client on the HTTP API or gateway port is told the port speaks HTTP', async () => {
  for (const port of [ports.http, ports.ws]) {
    const r = await runCli(['pub', 'demo.x', 'hi', '--server', `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('this port speaks HTTP');
    expect(r.err).toContain(`ws://127.0.0.1:${port}`);
  }
});

it('a ws:// client on the client or cluster port is told to use the gateway', async () => {
  for (const port of [ports.client, ports.cluster]) {
    const r = await runCli(['pub', 'demo.x', 'hi', '--server', `ws://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('the server answered the WebSocket upgrade with HTTP 400');
    expect(r.err).toContain('--ws-port');
  }
});

it('a client on the cluster port is told it is one', async () => {
  const r = await runCli(['pub', 'demo.x', 'hi', '--server', `127.0.0.1:${ports.cluster}`]);
  expect(r.code).toBe(1);
  expect(r.err).toContain('this is a cluster (peer) port, not a client port');
  // The right port still serves.
  expect((await runCli(['pub', 'demo.x', 'hi', '--server', `127.0.0.1:${ports.client}`])).code).toBe(0);
});

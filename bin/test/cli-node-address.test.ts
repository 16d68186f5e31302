import net from 'node:net';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { runCli, spawnCli, trackedProcesses, until, type CliProcess } from '@meshbus/testkit';

/**
 * The address `GET /v1/node` and `GET /v1/cluster` give for a node, with real
 * `meshbus start` processes on loopback (127.0.0.0/8 stands in for a
 * machine's interfaces). Before, a node bound to every interface
 * (`--host 0.0.0.0`, as the Docker image runs) said `0.0.0.0:4480`, which
 * no client can use, and `/v1/cluster` `nodes[].address` was this node's
 * client address but the peers' cluster addresses. Now the address is the one
 * the node announces to its peers for its clients (`--client-advertise`, the
 * `--advertise` host, host:port), a wildcard host replaced by the address the
 * HTTP caller reached the machine at, the rule peers apply to each other's
 * info; `nodes[]` rows add `clientAddress` and `clusterAddress`.
 */
const SECRET = 'node-address-secret-1';
const { track, stop } = trackedProcesses();
afterAll(() => stop());

interface Node {
  port: number;
  cluster: number;
  http: number;
  p: CliProcess;
}

async function startNode(args: (n: { port: number; cluster: number }) => string[]): Promise<Node> {
  const port = await freePort();
  const cluster = await freePort();
  const http = await freePort();
  const p = track(
    spawnCli(['start', '--port', String(port), '--ws-port', 'off', '--http-port', String(http), '--cluster-port', String(cluster), '--cluster-secret', SECRET, '--log-level', 'warn', '--http-insecure-open', 'on', ...args({ port, cluster })]),
  );
  await until(async () => (await fetch(`http://127.0.0.1:${http}/healthz`).catch(() => undefined))?.status === 200, 'the node to serve');
  return { port, cluster, http, p };
}

type NodeView = { address: string; listen: string };
type ClusterRow = { id: string; address: string; clientAddress: string; clusterAddress: string; self: boolean; state: string };
const get = async <T>(host: string, n: Node, path: string): Promise<T> => (await (await fetch(`http://${host}:${n.http}${path}`)).json()) as T;

/** Opens a TCP connection to `address` (host:port): true when something accepts it. */
function reachable(address: string): Promise<boolean> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = net.connect(Number(address.slice(i + 1)), address.slice(0, i).replace(/^\[|\]$/g, ''));
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

it('a node on every interface (--host 0.0.0.0): /v1/node gives the address the caller reached it at, and clients connect there', async () => {
  const a = await startNode(() => ['--host', '0.0.0.0']);
  const v1 = await get<NodeView>('127.0.0.1', a, '/v1/node');
  expect(v1.address).toBe(`127.0.0.1:${a.port}`);
  expect(v1.listen).toBe(`0.0.0.0:${a.port}`);
  // Another address of this machine: the caller there is told that one.
  const v2 = await get<NodeView>('127.0.0.2', a, '/v1/node');
  expect(v2.address).toBe(`127.0.0.2:${a.port}`);
  expect(await reachable(v2.address)).toBe(true);
  const self = (await get<{ nodes: ClusterRow[] }>('127.0.0.2', a, '/v1/cluster')).nodes.find((r) => r.self)!;
  expect(self.clientAddress).toBe(`127.0.0.2:${a.port}`);
  expect(self.clusterAddress).toBe(`127.0.0.1:${a.cluster}`);
  expect(self.address).toBe(`0.0.0.0:${a.port}`); // kept as it was
  // `meshbus cluster` prints the usable one.
  const out = await runCli(['cluster', '--http', `http://127.0.0.1:${a.http}`]);
  expect(out.code, out.err).toBe(0);
  expect(out.out).toContain(`127.0.0.1:${a.port}`);
  expect(out.out).not.toContain('0.0.0.0');
});

it('/v1/cluster: every row says its client address and its cluster address apart; a node behind --advertise gives that host', async () => {
  const a = await startNode(({ cluster }) => ['--host', '0.0.0.0', '--advertise', `127.0.0.3:${cluster}`, '--cluster-host', '0.0.0.0']);
  const b = await startNode(() => ['--seeds', `127.0.0.1:${a.cluster}`]);
  await until(async () => (await get<{ peers: { state: string }[] }>('127.0.0.1', b, '/v1/cluster')).peers.some((p) => p.state === 'up'), 'b links to a', 15_000);
  // A announces the --advertise host for its clients (a wildcard --host): its own view says so too.
  expect((await get<NodeView>('127.0.0.1', a, '/v1/node')).address).toBe(`127.0.0.3:${a.port}`);
  const rows = (await get<{ self: string; nodes: ClusterRow[] }>('127.0.0.1', b, '/v1/cluster')).nodes;
  const bSelf = rows.find((r) => r.self)!;
  const aRow = rows.find((r) => !r.self)!;
  expect(bSelf).toMatchObject({ address: `127.0.0.1:${b.port}`, clientAddress: `127.0.0.1:${b.port}`, clusterAddress: `127.0.0.1:${b.cluster}` });
  // `address` stays the peer's cluster address (as before); the new fields name both.
  expect(aRow).toMatchObject({ address: `127.0.0.3:${a.cluster}`, clientAddress: `127.0.0.3:${a.port}`, clusterAddress: `127.0.0.3:${a.cluster}`, state: 'up' });
  expect(await reachable(aRow.clientAddress)).toBe(true);
});

it('a node on every IPv6 interface (--host ::): the addresses it shows put the host in brackets (was `:::<port>`, the port not told from the address)', async () => {
  const a = await startNode(() => ['--host', '::']);
  const v = await get<NodeView>('127.0.0.1', a, '/v1/node');
  expect(v.listen).toBe(`[::]:${a.port}`);
  expect(v.address).toBe(`127.0.0.1:${a.port}`);
  const self = (await get<{ nodes: ClusterRow[] }>('127.0.0.1', a, '/v1/cluster')).nodes.find((r) => r.self)!;
  expect(self.address).toBe(`[::]:${a.port}`);
  // Asked over IPv6 loopback: the caller is told that address, and can connect there.
  const v6 = await get<NodeView>('[::1]', a, '/v1/node');
  expect(v6.address).toBe(`[::1]:${a.port}`);
  expect(await reachable(v6.address)).toBe(true);
});

import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '@meshbus/core';
import { runCli, spawnCli, tcpProxy, trackedProcesses, until, type CliProcess, type TcpProxy } from '@meshbus/testkit';

/**
 * What the other nodes of a mesh tell their clients about a node (WELCOME
 * peers, GOODBYE reconnect: where to fail over to), with real `meshbus start`
 * processes on loopback (127.0.0.0/8 stands in for a machine's interfaces),
 * clients that follow a draining node (`sub`), and proxies standing in for a
 * load balancer or NAT. Found by a newcomer binding the client port and the
 * cluster port to different addresses, and looking for a way to give
 * browsers a wss:// URL behind a TLS proxy.
 */

const SECRET = 'advertise-secret-1';
const { track, stop } = trackedProcesses();
const proxies: TcpProxy[] = [];
afterAll(async () => {
  await stop();
  await Promise.all(proxies.map((p) => p.close()));
});

interface Node {
  port: number;
  ws: number;
  cluster: number;
  http: string;
  p: CliProcess;
}

interface Ports {
  port: number;
  ws: number;
  cluster: number;
}

async function freePorts(): Promise<Ports> {
  return { port: await freePort(), ws: await freePort(), cluster: await freePort() };
}

/** `meshbus start` with its own ports; `args` may use them (e.g. --advertise with the cluster port). */
async function startNode(args: (ports: Ports) => string[], ports?: Ports): Promise<Node> {
  const { port, ws, cluster } = ports ?? (await freePorts());
  const http = await freePort();
  const p = track(
    spawnCli([
      'start', '--port', String(port), '--ws-port', String(ws), '--http-port', String(http), '--cluster-port', String(cluster),
      '--cluster-secret', SECRET, '--log-level', 'warn', '--http-insecure-open', 'on', ...args({ port, ws, cluster }),
    ]),
  );
  const url = `http://127.0.0.1:${http}`;
  await until(async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.status === 200, 'the node to serve');
  return { port, ws, cluster, http: url, p };
}

async function linked(n: Node): Promise<boolean> {
  const v = (await (await fetch(`${n.http}/v1/cluster`)).json()) as { peers: { state: string }[] };
  return v.peers.some((p) => p.state === 'up');
}

/** A `sub` on `server` alone, once the node took its subscription. */
async function follower(server: string): Promise<CliProcess> {
  const sub = track(spawnCli(['sub', 'adv.>', '--count', '1', '--reconnects', '2', '--server', server]));
  await until(() => sub.err().includes('subscribed to adv.>'), 'the subscription');
  return sub;
}

/**
 * SIGTERMs `b`: its GOODBYE names the other node as the clients' way on, and
 * the `sub` on b alone must reach it there, then get an event published on it.
 */
async function drainAndFollow(b: Node, sub: CliProcess, pubServer: string): Promise<string> {
  b.p.child.kill('SIGTERM');
  expect(await b.p.exited).toBe(0);
  await until(() => sub.err().includes('reconnected to') || sub.child.exitCode !== null, 'the sub to follow the drain');
  expect(sub.child.exitCode, sub.err()).toBe(null);
  const pub = await runCli(['pub', 'adv.x', 'after', '--server', pubServer]);
  expect(pub.code, pub.err).toBe(0);
  expect(await sub.exited, sub.err()).toBe(0);
  expect(sub.out()).toBe('[#1] adv.x: after\n');
  return /reconnected to ([^\s,]+)/.exec(sub.err())![1]!;
}

describe('the address a node is announced at to other nodes\' clients', () => {
  it('a client port bound to one address is announced there, not at the --advertise host of a cluster port on another interface', async () => {
    // a: clients on 127.0.0.1 (the default --host), peers on 127.0.0.9. Before, b's TCP
    // clients were told to fail over to 127.0.0.9:<a's client port>, where nothing
    // listens: the sub was refused there and exited 1 (connection lost).
    const a = await startNode(({ cluster }) => ['--cluster-host', '127.0.0.9', '--advertise', `127.0.0.9:${cluster}`, '--name', 'a']);
    const b = await startNode(() => ['--seeds', `127.0.0.9:${a.cluster}`, '--name', 'b']);
    await until(() => linked(b), 'the link');
    const sub = await follower(`127.0.0.1:${b.port}`);
    expect(await drainAndFollow(b, sub, `127.0.0.1:${a.port}`)).toBe(`tcp://127.0.0.1:${a.port}`);
  });

  it('--host 0.0.0.0 with --advertise: WebSocket clients are told the --advertise host, as TCP clients are', async () => {
    // Before, TCP clients got 127.0.0.4 (the --advertise host) and WebSocket clients
    // the address the peer link came from: behind NAT, a private address.
    const a = await startNode(({ cluster }) => ['--host', '0.0.0.0', '--cluster-host', '0.0.0.0', '--advertise', `127.0.0.4:${cluster}`]);
    const b = await startNode(() => ['--seeds', `127.0.0.1:${a.cluster}`]);
    await until(() => linked(b), 'the link');
    const sub = await follower(`ws://127.0.0.1:${b.ws}/`);
    expect(await drainAndFollow(b, sub, `127.0.0.1:${a.port}`)).toBe(`ws://127.0.0.4:${a.ws}/`);
  });

  it('--client-advertise and --ws-advertise: clients fail over to the addresses given (a proxy in front of the node)', async () => {
    const ports = await freePorts();
    const clientProxy = await tcpProxy(ports.port);
    const wsProxy = await tcpProxy(ports.ws);
    proxies.push(clientProxy, wsProxy);
    const a = await startNode(() => ['--client-advertise', clientProxy.addr, '--ws-advertise', `ws://${wsProxy.addr}/mesh`], ports);
    const b = await startNode(() => ['--seeds', `127.0.0.1:${a.cluster}`]);
    await until(() => linked(b), 'the link');
    // b's TCP and WebSocket clients, told to go on to a, go through the proxies.
    const tcpSub = await follower(`127.0.0.1:${b.port}`);
    const wsSub = await follower(`ws://127.0.0.1:${b.ws}/`);
    const [tcpDials, wsDials] = [clientProxy.dials(), wsProxy.dials()];
    b.p.child.kill('SIGTERM');
    expect(await b.p.exited).toBe(0);
    for (const sub of [tcpSub, wsSub]) await until(() => sub.err().includes('reconnected to') || sub.child.exitCode !== null, 'the subs to follow the drain');
    expect(tcpSub.err()).toContain(`reconnected to tcp://${clientProxy.addr}`);
    expect(wsSub.err()).toContain(`reconnected to ws://${wsProxy.addr}/mesh`);
    expect(clientProxy.dials()).toBeGreaterThan(tcpDials);
    expect(wsProxy.dials()).toBeGreaterThan(wsDials);
    expect((await runCli(['pub', 'adv.x', 'after', '--server', `127.0.0.1:${a.port}`])).code).toBe(0);
    for (const sub of [tcpSub, wsSub]) {
      expect(await sub.exited, sub.err()).toBe(0);
      expect(sub.out()).toBe('[#1] adv.x: after\n');
    }
  });

  it('refuses a --client-advertise or --ws-advertise peers would refuse, and --ws-advertise without the gateway: exit 2 naming the setting, before any port opens', async () => {
    const bad = await runCli(['start', '--port', '0', '--cluster-port', '0', '--client-advertise', 'not an address']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--client-advertise "not an address"');
    const http = await runCli(['start', '--port', '0', '--ws-port', '0', '--ws-advertise', 'http://mesh.example.com/']);
    expect(http.code).toBe(2);
    expect(http.err).toContain('--ws-advertise "http://mesh.example.com/": not a ws:// or wss:// URL');
    const off = await runCli(['start', '--port', '0', '--ws-port', 'off'], 15_000, { ...process.env, MESHBUS_WS_ADVERTISE: 'wss://mesh.example.com/' });
    expect(off.code).toBe(2);
    expect(off.err).toContain('MESHBUS_WS_ADVERTISE needs the WebSocket gateway (--ws-port is off)');
    for (const r of [bad, http, off]) expect(r.err).not.toContain('node listening');
  });
});
